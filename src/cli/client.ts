import {request, type IncomingMessage} from 'node:http';

/** No daemon answers on the socket: nothing there, or nobody listening. */
export class NoDaemonError extends Error {
	constructor(socket: string, cause: unknown) {
		super(`no vmwarden daemon listens on ${socket} (start one with \`vmwarden serve\`, or name its socket with --socket)`, {cause});
	}
}

/** The daemon answered with an error. */
export class DaemonError extends Error {
	readonly status: number;
	readonly body: unknown;

	constructor(status: number, body: unknown) {
		const error = (body as {error?: {message?: unknown}} | undefined)?.error;
		super(typeof error?.message === 'string' ? error.message : `the daemon answered ${status}`);
		this.status = status;
		this.body = body;
	}
}

/** The largest reply read: a list of every VM a daemon can hold fits many times over. */
const MAX_REPLY_BYTES = 64 * 1024 * 1024;

const NO_DAEMON = new Set(['ENOENT', 'ECONNREFUSED', 'ENOTSOCK', 'ECONNRESET']);

/** Opens a request to the daemon and resolves with its response (before reading the body). */
export async function openRequest(socket: string, method: 'GET' | 'POST', path: string, body?: unknown): Promise<IncomingMessage> {
	const payload = body === undefined ? undefined : JSON.stringify(body);
	return new Promise((resolve, reject) => {
		const outgoing = request({
			socketPath: socket,
			method,
			path,
			headers: payload === undefined ? {} : {'content-type': 'application/json', 'content-length': Buffer.byteLength(payload)},
		}, resolve);
		outgoing.once('error', error => {
			reject(NO_DAEMON.has((error as NodeJS.ErrnoException).code ?? '') ? new NoDaemonError(socket, error) : error);
		});
		outgoing.end(payload);
	});
}

/** One request and its JSON reply; rejects with `DaemonError` for a status of 400 or more. */
export async function call(socket: string, method: 'GET' | 'POST', path: string, body?: unknown): Promise<unknown> {
	return readJson(await openRequest(socket, method, path, body));
}

/**
 * Opens a stream the daemon serves (events, a console) and resolves with the response once the
 * daemon accepted it; rejects with `DaemonError` and the daemon's error when it refused.
 */
export async function openStream(socket: string, path: string): Promise<IncomingMessage> {
	const response = await openRequest(socket, 'GET', path);
	if ((response.statusCode ?? 500) >= 400) {
		await readJson(response);
	}

	return response;
}

async function readJson(response: IncomingMessage): Promise<unknown> {
	const chunks: Buffer[] = [];
	let length = 0;
	for await (const chunk of response) {
		const buffer = chunk as Buffer;
		length += buffer.length;
		if (length > MAX_REPLY_BYTES) {
			response.destroy();
			throw new Error(`the daemon's reply is over ${MAX_REPLY_BYTES} bytes`);
		}

		chunks.push(buffer);
	}

	const text = Buffer.concat(chunks).toString('utf8');
	let json: unknown;
	try {
		json = JSON.parse(text) as unknown;
	} catch {
		throw new Error(`the daemon answered ${response.statusCode ?? '?'} with no JSON: ${text.slice(0, 200)}`);
	}

	if ((response.statusCode ?? 500) >= 400) {
		throw new DaemonError(response.statusCode ?? 500, json);
	}

	return json;
}
