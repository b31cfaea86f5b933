import {statSync, unlinkSync} from 'node:fs';
import {createServer, type Server, type Socket} from 'node:net';
import {join} from 'node:path';
import {CONTROL_OK, CONTROL_REQUESTS, encodeControlMessage, type BalloonStatsResponse} from './control-protocol.js';
import {isInheritedDescriptor, osErrorText, procSelfDescriptor} from './descriptors.js';
import {ConfigurationError} from './failures.js';
import {log} from './log.js';

/** What the VM does for each request the control socket accepts. */
export interface ControlHandlers {
	/** `Exit`: answered "Ok" first (unless `answerStop` says no), then called. */
	stop(): void;
	/** Whether a stop request is answered at all (`ignore-stop` wedges it). */
	answerStop(): boolean;
	suspend(): void;
	resume(): void;
	/** `BalloonCommand::Adjust`: the balloon's new target. */
	adjustBalloon(numBytes: number): void;
	/** `BalloonCommand::Stats`: answered once the guest runs (a suspended guest reports nothing). */
	balloonStats(): Promise<BalloonStatsResponse>;
}

/** The VM's listening control socket. */
export interface ControlServer {
	/** The path bound, when the simulator created one (removed by `close`). */
	readonly path: string | undefined;
	/** Removes the socket file; synchronous, for the exit path. */
	unlink(): void;
}

const MAX_REQUEST_BYTES = 64 * 1024;

function respond(socket: Socket, message: unknown, then?: () => void): void {
	socket.end(encodeControlMessage(message), then);
}

function handleRequest(socket: Socket, line: string, handlers: ControlHandlers): void {
	let request: unknown;
	try {
		request = JSON.parse(line);
	} catch {
		respond(socket, {Err: 'invalid request'});
		return;
	}

	switch (request) {
		case CONTROL_REQUESTS.stop: {
			if (handlers.answerStop()) {
				log('info', 'control socket requested exit');
				respond(socket, CONTROL_OK, () => {
					handlers.stop();
				});
			}

			// A wedged VMM: the request is read and never answered; the client waits.
			return;
		}

		case CONTROL_REQUESTS.suspend:
		case 'Suspend': {
			handlers.suspend();
			respond(socket, CONTROL_OK);
			return;
		}

		case CONTROL_REQUESTS.resume:
		case 'Resume': {
			handlers.resume();
			respond(socket, CONTROL_OK);
			return;
		}

		default: {
			handleBalloon(socket, request, handlers);
		}
	}
}

function isRecord(value: unknown): value is Record<string, unknown> {
	return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `VmRequest::BalloonCommand`: `Adjust {num_bytes, ...}` or `Stats {}`; anything else is refused. */
function handleBalloon(socket: Socket, request: unknown, handlers: ControlHandlers): void {
	const command = isRecord(request) ? request['BalloonCommand'] : undefined;
	const adjust = isRecord(command) ? command['Adjust'] : undefined;
	if (isRecord(adjust) && typeof adjust['num_bytes'] === 'number' && Number.isInteger(adjust['num_bytes']) && adjust['num_bytes'] >= 0) {
		handlers.adjustBalloon(adjust['num_bytes']);
		respond(socket, CONTROL_OK);
		return;
	}

	if (isRecord(command) && 'Stats' in command) {
		void handlers.balloonStats().then(response => {
			respond(socket, response);
		});
		return;
	}

	respond(socket, {Err: 'unsupported request'});
}

function serveConnection(socket: Socket, handlers: ControlHandlers): void {
	let pending = '';
	socket.setEncoding('utf8');
	socket.on('error', () => {
		socket.destroy();
	});
	socket.on('data', (chunk: string) => {
		pending += chunk;
		const newline = pending.indexOf('\n');
		if (newline !== -1) {
			socket.removeAllListeners('data');
			handleRequest(socket, pending.slice(0, newline), handlers);
		} else if (pending.length > MAX_REQUEST_BYTES) {
			socket.destroy();
		}
	});
}

function socketPath(requested: string): string {
	try {
		if (statSync(requested).isDirectory()) {
			return join(requested, `crosvm-${process.pid}.sock`);
		}
	} catch {
		// Not there yet: bind creates it.
	}

	return requested;
}

function listen(server: Server, target: string | {fd: number}): Promise<void> {
	return new Promise((resolve, reject) => {
		server.once('error', reject);
		server.listen(target, () => {
			server.off('error', reject);
			resolve();
		});
	});
}

/**
 * Serves `--socket`: a directory gets `crosvm-<pid>.sock`, an inherited `/proc/self/fd/N` must be a
 * listening socket, an existing file makes the bind fail (exit 1, as crosvm's does).
 */
export async function startControlServer(requested: string, handlers: ControlHandlers): Promise<ControlServer> {
	const server = createServer(socket => {
		serveConnection(socket, handlers);
	});
	const inherited = procSelfDescriptor(requested);
	const path = inherited === undefined ? socketPath(requested) : undefined;
	try {
		if (inherited !== undefined && !isInheritedDescriptor(inherited)) {
			throw Object.assign(new Error('bad descriptor'), {code: 'EBADF', errno: 9});
		}

		await listen(server, inherited === undefined ? path! : {fd: inherited});
	} catch (error) {
		server.close();
		throw new ConfigurationError(`failed to create control server: ${osErrorText(error)}`);
	}

	let unlinked = false;
	return {
		path,
		unlink() {
			if (path !== undefined && !unlinked) {
				unlinked = true;
				try {
					unlinkSync(path);
				} catch {
					// Already gone.
				}
			}
		},
	};
}
