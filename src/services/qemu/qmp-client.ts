import net from 'node:net';
import {setTimeout as delay} from 'node:timers/promises';
import {QmpError} from '../../errors.js';
import {sanitizeForLog} from '../logging/sanitize.js';

/**
 * The longest QMP line the client buffers. QEMU's greeting and the replies to the commands sent
 * here are a few hundred bytes; a peer that goes past this without a newline is not QEMU.
 */
export const MAX_QMP_LINE_BYTES = 1024 * 1024;

/** The most replies a peer may send ahead of the commands that ask for them. */
const MAX_QUEUED_REPLIES = 16;

function checkLength(lineBytes: number): void {
	if (lineBytes > MAX_QMP_LINE_BYTES) {
		throw new QmpError(`QMP sent a line longer than ${MAX_QMP_LINE_BYTES} bytes`);
	}
}

/** A QMP message, checked: what `exchange` can act on. */
export type QmpMessage =
	| {kind: 'greeting'}
	/** `value` is the command's `return` member as sent: unchecked, its reader checks its shape. */
	| {kind: 'return'; value: unknown}
	| {kind: 'error'; errorClass: string; desc: string}
	| {kind: 'event'};

/** Peer text inside an error message: bounded and escaped, as it may well end up in a log. */
function quote(text: string): string {
	return sanitizeForLog(text, 200);
}

function isObject(value: unknown): value is Record<string, unknown> {
	return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Reads one line as QEMU's QMP specification (docs/interop/qmp-spec.rst) shapes its messages: a
 * greeting `{"QMP": {...}}`, a success `{"return": ...}`, an error `{"error": {"class", "desc"}}`
 * or an event `{"event": "NAME", ...}`. Anything else is a `QmpError`.
 */
export function parseQmpLine(line: string): QmpMessage {
	let value: unknown;
	try {
		value = JSON.parse(line);
	} catch {
		throw new QmpError(`QMP sent a line that is not JSON: ${quote(line)}`);
	}

	if (!isObject(value)) {
		throw new QmpError(`QMP sent JSON that is not an object: ${quote(line)}`);
	}

	if (isObject(value['QMP'])) {
		return {kind: 'greeting'};
	}

	if (typeof value['event'] === 'string') {
		return {kind: 'event'};
	}

	const {error} = value;
	if (isObject(error) && typeof error['class'] === 'string' && typeof error['desc'] === 'string') {
		return {kind: 'error', errorClass: error['class'], desc: error['desc']};
	}

	if ('return' in value && !('error' in value)) {
		return {kind: 'return', value: value['return']};
	}

	throw new QmpError(`QMP sent a message of no known shape: ${quote(line)}`);
}

// QEMU creates its QMP socket while it starts: a connection this early is retried.
const RETRY_CODES: ReadonlySet<string> = new Set(['ENOENT', 'ECONNREFUSED']);
const RETRY_INTERVAL_MS = 50;

async function connect(socketPath: string, deadline: number, signal: AbortSignal): Promise<net.Socket> {
	const noConnection = (error: unknown) => new QmpError(`cannot connect to QMP at ${socketPath}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, {cause: error});
	let lastError: unknown;
	// Stopped while trying or waiting to try again. Past the deadline with a reason already known (a
	// busy loop runs the timer late), the reason is what the caller needs, not that nothing answered.
	const stopped = () => (lastError !== undefined && Date.now() >= deadline ? noConnection(lastError) : abortReason(signal));
	for (;;) {
		try {
			return await new Promise<net.Socket>((resolve, reject) => {
				const socket = net.connect(socketPath);
				const abort = () => {
					socket.destroy();
					reject(abortReason(signal));
				};

				signal.addEventListener('abort', abort, {once: true});
				socket.once('connect', () => {
					signal.removeEventListener('abort', abort);
					socket.off('error', reject);
					resolve(socket);
				});
				socket.once('error', error => {
					signal.removeEventListener('abort', abort);
					reject(error);
				});
			});
		} catch (error) {
			if (error instanceof QmpError) {
				throw stopped();
			}

			const code = (error as NodeJS.ErrnoException).code;
			if (code === undefined || !RETRY_CODES.has(code) || Date.now() + RETRY_INTERVAL_MS > deadline) {
				throw noConnection(error);
			}

			lastError = error;
			await delay(RETRY_INTERVAL_MS, undefined, {signal}).catch(() => {
				throw stopped();
			});
		}
	}
}

/**
 * Reads QMP messages line by line, skipping events. Looks at each byte once and buffers at most
 * `MAX_QMP_LINE_BYTES` of a line: a peer that sends more, sends a message of no known shape, or
 * sends replies nobody asked for ends the session with a `QmpError` and its socket destroyed.
 */
function messages(socket: net.Socket): () => Promise<QmpMessage> {
	const queue: QmpMessage[] = [];
	const waiting: Array<{resolve: (message: QmpMessage) => void; reject: (error: Error) => void}> = [];
	let pending: Uint8Array[] = [];
	let pendingBytes = 0;
	let ended: Error | undefined;
	const fail = (error: Error) => {
		if (ended === undefined) {
			ended = error;
			socket.destroy();
		}

		for (const waiter of waiting.splice(0)) {
			waiter.reject(ended);
		}
	};

	const take = (line: string) => {
		if (line.trim() === '') {
			return;
		}

		const message = parseQmpLine(line);
		if (message.kind === 'event') {
			return;
		}

		const waiter = waiting.shift();
		if (waiter !== undefined) {
			waiter.resolve(message);
		} else if (queue.push(message) > MAX_QUEUED_REPLIES) {
			throw new QmpError(`QMP sent more than ${MAX_QUEUED_REPLIES} replies nobody asked for`);
		}
	};

	socket.on('data', (chunk: Uint8Array) => {
		let start = 0;
		try {
			for (let newline = chunk.indexOf(0x0A); newline !== -1 && ended === undefined; newline = chunk.indexOf(0x0A, start)) {
				checkLength(pendingBytes + newline - start);
				pending.push(chunk.subarray(start, newline));
				const line = Buffer.concat(pending).toString('utf8');
				pending = [];
				pendingBytes = 0;
				start = newline + 1;
				take(line);
			}

			if (ended === undefined && start < chunk.length) {
				pendingBytes += chunk.length - start;
				checkLength(pendingBytes);
				pending.push(chunk.subarray(start));
			}
		} catch (error) {
			// A peer that broke the protocol is not believed about anything it sent before.
			queue.length = 0;
			fail(error instanceof QmpError ? error : new QmpError(`QMP reply could not be read: ${quote(String(error))}`, {cause: error}));
		}
	});
	socket.on('error', error => {
		fail(new QmpError(`QMP connection failed: ${quote(error.message)}`, {cause: error}));
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

/** A command as QMP reads it: `arguments` only when there are some. */
type QmpCommand = {execute: string; arguments?: Record<string, unknown>};

async function exchange(socket: net.Socket, command: QmpCommand): Promise<unknown> {
	const next = messages(socket);
	const greeting = await next();
	if (greeting.kind !== 'greeting') {
		throw new QmpError('QMP sent no greeting');
	}

	let value: unknown;
	for (const sent of [{execute: 'qmp_capabilities'}, command]) {
		socket.write(`${JSON.stringify(sent)}\n`);
		const reply = await next();
		if (reply.kind === 'error') {
			throw new QmpError(`QMP ${sent.execute} failed: ${quote(reply.errorClass)}: ${quote(reply.desc)}`);
		}

		if (reply.kind !== 'return') {
			throw new QmpError(`QMP answered ${sent.execute} with a second greeting`);
		}

		value = reply.value;
	}

	return value;
}

/**
 * Runs one QMP command on QEMU's QMP socket, with `args` as its `arguments` when given (`balloon`
 * takes `{value}`), and resolves with its `return` value once QEMU answered (`{}` for commands that
 * return nothing). That value comes from another process: unchecked here, the caller checks its
 * shape. Retries the connection while QEMU is still creating the socket; gives up with `QmpError`
 * after `timeoutMs`, connecting included, or as soon as `signal` aborts (the VM died: nobody will
 * ever answer, and a retried connection would only keep the host busy until the timeout).
 */
export async function qmpExecute(socketPath: string, command: string, timeoutMs: number, args?: Record<string, unknown>, signal?: AbortSignal): Promise<unknown> {
	if (signal?.aborted === true) {
		throw new QmpError(`QMP ${command} abandoned: the request was cancelled`);
	}

	const deadline = Date.now() + timeoutMs;
	const timeout = new AbortController();
	const timer = setTimeout(() => {
		timeout.abort(new QmpError(`QMP ${command} got no answer within ${timeoutMs} ms`));
	}, timeoutMs);
	const abandon = () => {
		timeout.abort(new QmpError(`QMP ${command} abandoned: the request was cancelled`));
	};

	signal?.addEventListener('abort', abandon, {once: true});
	const timedOut = new Promise<never>((_resolve, reject) => {
		timeout.signal.addEventListener('abort', () => {
			reject(abortReason(timeout.signal));
		}, {once: true});
	});
	// Awaited only if the connection is made in time.
	timedOut.catch(() => undefined);
	let socket: net.Socket | undefined;
	try {
		socket = await connect(socketPath, deadline, timeout.signal);
		return await Promise.race([exchange(socket, args === undefined ? {execute: command} : {execute: command, arguments: args}), timedOut]);
	} finally {
		clearTimeout(timer);
		signal?.removeEventListener('abort', abandon);
		socket?.destroy();
	}
}

/** Why a signal aborted: always an Error (this module aborts only with `QmpError`s). */
function abortReason(signal: AbortSignal): Error {
	const reason: unknown = signal.reason;
	return reason instanceof Error ? reason : new QmpError(`QMP aborted: ${String(reason)}`);
}
