import {lstatSync, readFileSync, unlinkSync} from 'node:fs';
import {connect} from 'node:net';
import {dirname, join} from 'node:path';

/** A problem with the daemon's socket that stops `serve` before it listens. */
export class SocketError extends Error {}

/**
 * Where the daemon listens unless `--socket` says: `/run/vmwarden.sock` for root, else
 * `$XDG_RUNTIME_DIR/vmwarden.sock` (a directory only this user may enter). Undefined when neither
 * applies: the caller must then name one.
 */
export function defaultSocketPath(env: NodeJS.ProcessEnv = process.env): string | undefined {
	if (process.geteuid?.() === 0) {
		return '/run/vmwarden.sock';
	}

	const runtime = env['XDG_RUNTIME_DIR'];
	return runtime !== undefined && runtime.startsWith('/') ? join(runtime, 'vmwarden.sock') : undefined;
}

/** Whether something accepts connections on the unix socket `path` (answers within `timeoutMs`). */
export async function socketIsLive(path: string, timeoutMs = 1000): Promise<boolean> {
	return new Promise(resolve => {
		const socket = connect({path});
		const done = (live: boolean) => {
			clearTimeout(timer);
			socket.destroy();
			resolve(live);
		};

		// A listener that accepts but never answers still holds the socket: it counts as live.
		const timer = setTimeout(() => {
			done(true);
		}, timeoutMs);
		socket.once('connect', () => {
			done(true);
		});
		socket.once('error', () => {
			done(false);
		});
	});
}

/** The sticky bit: in such a directory only a file's owner may remove or rename it. */
const STICKY = 0o1000;

/**
 * Refuses a socket directory that another user could write without the sticky bit: they could
 * swap the socket's name for a link between its creation and its chown/chmod, or remove it.
 */
function checkSocketDirectory(path: string): void {
	const directory = dirname(path);
	const stats = lstatSync(directory);
	const ownedByUs = stats.uid === process.geteuid?.() || stats.uid === 0;
	const shared = (stats.mode & 0o022) !== 0 && (stats.mode & STICKY) === 0;
	if (!stats.isDirectory() || !ownedByUs || shared) {
		throw new SocketError(`${directory} may be written by other users: put the socket in a directory only this user (or root) can write`);
	}
}

/**
 * Makes `path` free for a new daemon: nothing there, or a stale socket (one nobody listens on,
 * left by a daemon that was killed), which is removed. A live socket is never taken over, and
 * anything that is not a socket is never removed: both throw `SocketError`, as does a directory
 * other users may write.
 */
export async function claimSocketPath(path: string): Promise<void> {
	checkSocketDirectory(path);
	let stats;
	try {
		stats = lstatSync(path);
	} catch (error) {
		if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
			return;
		}

		throw error;
	}

	if (!stats.isSocket()) {
		throw new SocketError(`${path} exists and is not a socket: left alone`);
	}

	if (await socketIsLive(path)) {
		throw new SocketError(`another daemon listens on ${path}: it is not taken over`);
	}

	unlinkSync(path);
}

/** A group id from a number or a name in /etc/group (read bounded). */
export function resolveGroup(group: string): number {
	if (/^\d+$/.test(group)) {
		return Number(group);
	}

	const text = readFileSync('/etc/group', 'utf8').slice(0, 4 * 1024 * 1024);
	for (const line of text.split('\n')) {
		const [name, , gid] = line.split(':');
		if (name === group && gid !== undefined && /^\d+$/.test(gid)) {
			return Number(gid);
		}
	}

	throw new SocketError(`no group ${JSON.stringify(group)} in /etc/group`);
}
