import net from 'node:net';
import {setTimeout as delay} from 'node:timers/promises';
import {QmpError} from '../../errors.js';

/** The QEMU error an `{"error": ...}` reply carries. */
interface QmpReply {
	QMP?: unknown;
	return?: unknown;
	error?: {class?: string; desc?: string};
	event?: string;
}

// QEMU creates its QMP socket while it starts: a connection this early is retried.
const RETRY_CODES: ReadonlySet<string> = new Set(['ENOENT', 'ECONNREFUSED']);
const RETRY_INTERVAL_MS = 50;

async function connect(socketPath: string, deadline: number): Promise<net.Socket> {
	for (;;) {
		try {
			return await new Promise<net.Socket>((resolve, reject) => {
				const socket = net.connect(socketPath);
				socket.once('connect', () => {
					socket.off('error', reject);
					resolve(socket);
				});
				socket.once('error', reject);
			});
		} catch (error) {
			const code = (error as NodeJS.ErrnoException).code;
			if (code === undefined || !RETRY_CODES.has(code) || Date.now() + RETRY_INTERVAL_MS > deadline) {
				throw new QmpError(`cannot connect to QMP at ${socketPath}: ${code ?? String(error)}`, {cause: error});
			}

			await delay(RETRY_INTERVAL_MS);
		}
	}
}

/** Reads QMP replies line by line, skipping events. */
function replies(socket: net.Socket): () => Promise<QmpReply> {
	const queue: QmpReply[] = [];
	const waiting: Array<{resolve: (reply: QmpReply) => void; reject: (error: Error) => void}> = [];
	let pending = '';
	let ended: Error | undefined;
	const fail = (error: Error) => {
		ended ??= error;
		for (const waiter of waiting.splice(0)) {
			waiter.reject(ended);
		}
	};

	socket.setEncoding('utf8');
	socket.on('data', (chunk: string) => {
		const lines = (pending + chunk).split('\n');
		pending = lines.pop()!;
		for (const line of lines) {
			if (line.trim() === '') {
				continue;
			}

			let reply: QmpReply;
			try {
				reply = JSON.parse(line) as QmpReply;
			} catch {
				fail(new QmpError(`QMP sent a line that is not JSON: ${line.slice(0, 200)}`));
				return;
			}

			if (reply.event !== undefined) {
				continue;
			}

			const waiter = waiting.shift();
			if (waiter === undefined) {
				queue.push(reply);
			} else {
				waiter.resolve(reply);
			}
		}
	});
	socket.on('error', error => {
		fail(new QmpError(`QMP connection failed: ${error.message}`, {cause: error}));
	});
	socket.on('close', () => {
		fail(new QmpError('QMP closed the connection'));
	});
	return async () => {
		const next = queue.shift();
		if (next !== undefined) {
			return next;
		}

		if (ended !== undefined) {
			throw ended;
		}

		return new Promise((resolve, reject) => {
			waiting.push({resolve, reject});
		});
	};
}

async function exchange(socket: net.Socket, command: string): Promise<void> {
	const next = replies(socket);
	const greeting = await next();
	if (greeting.QMP === undefined) {
		throw new QmpError('QMP sent no greeting');
	}

	for (const execute of ['qmp_capabilities', command]) {
		socket.write(`${JSON.stringify({execute})}\n`);
		const reply = await next();
		if (reply.error !== undefined) {
			throw new QmpError(`QMP ${execute} failed: ${reply.error.class ?? 'Error'}: ${reply.error.desc ?? ''}`);
		}
	}
}

/**
 * Runs one QMP command without arguments (`system_powerdown`, `quit`) on QEMU's QMP socket and
 * resolves once QEMU acknowledged it. Retries the connection while QEMU is still creating the
 * socket; gives up with `QmpError` after `timeoutMs`.
 */
export async function qmpExecute(socketPath: string, command: string, timeoutMs: number): Promise<void> {
	const deadline = Date.now() + timeoutMs;
	const socket = await connect(socketPath, deadline);
	let timer: NodeJS.Timeout | undefined;
	try {
		await Promise.race([
			exchange(socket, command),
			new Promise<never>((_resolve, reject) => {
				timer = setTimeout(() => {
					reject(new QmpError(`QMP ${command} got no answer within ${timeoutMs} ms`));
				}, Math.max(0, deadline - Date.now()));
			}),
		]);
	} finally {
		clearTimeout(timer);
		socket.destroy();
	}
}
