/**
 * The payload report protocol, version 1: how a guest tells the host what its payload is doing, one
 * text line at a time, on the payload channel (the guest's `/dev/ttyS2`). See docs/payload-protocol.md.
 *
 *     VMW1 STARTED
 *     VMW1 READY
 *     VMW1 FINISHED <exit code>
 *     VMW1 ERROR <code> <message>
 *
 * Every line carries the version, so a host that missed the start of the stream still understands
 * the rest, and a future version can be told apart line by line.
 */
export const PAYLOAD_PROTOCOL_VERSION = 1;

const PREFIX = `VMW${PAYLOAD_PROTOCOL_VERSION}`;

/** The longest line a host keeps; anything longer is dropped as malformed (a UART is not a file). */
export const MAX_PAYLOAD_LINE_BYTES = 4096;

export type PayloadReport =
	| {type: 'started'}
	| {type: 'ready'}
	| {type: 'finished'; exitCode: number}
	| {type: 'error'; code: number; message: string};

/** What a line turned out to be: a report, or why it is not one. */
export type PayloadLine = {ok: true; report: PayloadReport} | {ok: false; line: string; problem: string};

const INTEGER = /^-?\d{1,10}$/;

export function formatPayloadReport(report: PayloadReport): string {
	switch (report.type) {
		case 'started': {
			return `${PREFIX} STARTED\n`;
		}

		case 'ready': {
			return `${PREFIX} READY\n`;
		}

		case 'finished': {
			return `${PREFIX} FINISHED ${report.exitCode}\n`;
		}

		case 'error': {
			return `${PREFIX} ERROR ${report.code} ${report.message.replaceAll(/[\r\n]/g, ' ')}\n`;
		}
	}
}

/** Parses one line (without its line ending). */
export function parsePayloadLine(line: string): PayloadLine {
	const bad = (problem: string): PayloadLine => ({ok: false, line, problem});
	const [version, verb, ...rest] = line.split(' ');
	if (version !== PREFIX) {
		return bad(/^VMW\d+$/.test(version ?? '') ? `unsupported protocol version ${version}` : 'not a payload report');
	}

	switch (verb) {
		case 'STARTED':
		case 'READY': {
			return rest.length === 0 ? {ok: true, report: {type: verb === 'STARTED' ? 'started' : 'ready'}} : bad(`${verb} takes no arguments`);
		}

		case 'FINISHED': {
			const [code] = rest;
			return rest.length === 1 && INTEGER.test(code!) ? {ok: true, report: {type: 'finished', exitCode: Number(code)}} : bad('FINISHED takes one integer exit code');
		}

		case 'ERROR': {
			const [code, ...words] = rest;
			return code !== undefined && INTEGER.test(code) ? {ok: true, report: {type: 'error', code: Number(code), message: words.join(' ')}} : bad('ERROR takes an integer code and a message');
		}

		default: {
			return bad(`unknown verb ${verb ?? '(none)'}`);
		}
	}
}

/** Whether a line (perhaps still ending in the `\r` of a `\r\n`) holds more than the limit. */
function isTooLong(line: string): boolean {
	return Buffer.byteLength(line.endsWith('\r') ? line.slice(0, -1) : line) > MAX_PAYLOAD_LINE_BYTES;
}

function tooLong(line: string): PayloadLine {
	return {ok: false, line: line.slice(0, 80), problem: `line longer than ${MAX_PAYLOAD_LINE_BYTES} bytes`};
}

/**
 * Splits a byte stream into payload lines. Tolerates `\r\n` (a guest tty adds it) and drops
 * over-long lines instead of buffering without bound.
 */
export class PayloadLineDecoder {
	#pending = '';
	#discarding = false;
	readonly #decoder = new TextDecoder();

	/** Feeds a chunk; returns the complete lines it finished. */
	push(chunk: Uint8Array | string): PayloadLine[] {
		const text = typeof chunk === 'string' ? chunk : this.#decoder.decode(chunk, {stream: true});
		const parts = (this.#pending + text).split('\n');
		this.#pending = parts.pop()!;
		const lines: PayloadLine[] = [];
		for (const part of parts) {
			if (this.#discarding) {
				this.#discarding = false;
				continue;
			}

			// A long line that arrived whole is as malformed as one that arrived in pieces.
			lines.push(isTooLong(part) ? tooLong(part) : this.#parse(part));
		}

		if (isTooLong(this.#pending)) {
			// One report per long line, however many chunks it spans.
			if (!this.#discarding) {
				lines.push(tooLong(this.#pending));
			}

			this.#pending = '';
			this.#discarding = true;
		}

		return lines;
	}

	/** Ends the stream: a last line without a newline still counts. */
	end(): PayloadLine[] {
		const last = this.#pending + this.#decoder.decode();
		this.#pending = '';
		return last.length === 0 || this.#discarding ? [] : [this.#parse(last)];
	}

	#parse(line: string): PayloadLine {
		return parsePayloadLine(line.endsWith('\r') ? line.slice(0, -1) : line);
	}
}
