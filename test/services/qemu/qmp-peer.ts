import {mkdtempSync, rmSync} from 'node:fs';
import net from 'node:net';
import {tmpdir} from 'node:os';
import path from 'node:path';

/** What a fake QMP peer does with one connection: it gets the socket and what the client wrote. */
export type PeerScript = (socket: net.Socket, received: () => string) => void;

/** A fake QMP peer on a Unix socket whose behaviour each test sets; `close()` removes it. */
export async function startQmpPeer(options: {socketPath?: string} = {}): Promise<{socketPath: string; play: (script: PeerScript) => void; close: () => Promise<void>; connections: () => number}> {
	const socketPath = options.socketPath ?? path.join(mkdtempSync(path.join(tmpdir(), 'vmw-qmp-')), 'qmp.sock');
	const dir = path.dirname(socketPath);
	let script: PeerScript = () => undefined;
	let connections = 0;
	const open = new Set<net.Socket>();
	const server = net.createServer(socket => {
		connections++;
		open.add(socket);
		socket.on('close', () => open.delete(socket));
		socket.on('error', () => undefined);
		let received = '';
		socket.on('data', chunk => {
			received += chunk.toString();
		});
		script(socket, () => received);
	});
	await new Promise<void>(resolve => server.listen(socketPath, resolve));
	return {
		socketPath,
		play(next) {
			script = next;
		},
		connections: () => connections,
		async close() {
			for (const socket of open) {
				socket.destroy();
			}

			await new Promise(resolve => server.close(resolve));
			if (options.socketPath === undefined) {
				rmSync(dir, {recursive: true, force: true});
			}
		},
	};
}

export const GREETING = '{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 8}}, "capabilities": ["oob"]}}\r\n';
export const RETURN = '{"return": {}}\r\n';
