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

/** What the decoder keeps of an unfinished line: the limit and a `\r` that a `\n` may yet follow. */
const PENDING_CAPACITY = MAX_PAYLOAD_LINE_BYTES + 1;

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
	// `split` returns at least one word, so there always is a version.
	const [version, verb, ...rest] = line.split(' ') as [string, ...string[]];
	if (version !== PREFIX) {
		return bad(/^VMW\d+$/.test(version) ? `unsupported protocol version ${version}` : 'not a payload report');
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

const LF = 0x0A;
const CR = 0x0D;

/** How much of an over-long line the decoder shows: enough bytes for 80 characters of any kind. */
const TOO_LONG_PREVIEW_CHARACTERS = 80;
const TOO_LONG_PREVIEW_BYTES = TOO_LONG_PREVIEW_CHARACTERS * 4;

const utf8 = new TextDecoder();
const utf8Encoder = new TextEncoder();

function tooLong(start: Uint8Array): PayloadLine {
	const line = utf8.decode(start.subarray(0, TOO_LONG_PREVIEW_BYTES)).slice(0, TOO_LONG_PREVIEW_CHARACTERS);
	return {ok: false, line, problem: `line longer than ${MAX_PAYLOAD_LINE_BYTES} bytes`};
}

/**
 * Splits a byte stream into payload lines. Tolerates `\r\n` (a guest tty adds it) and drops
 * over-long lines instead of buffering without bound: it never holds more than one line's limit
 * (plus its `\r`), looks at each byte once, and its result does not depend on how the stream was
 * cut into chunks. Each line is decoded as UTF-8 on its own (`\n` is never part of a multi-byte
 * character), malformed bytes as U+FFFD.
 */
export class PayloadLineDecoder {
	// The start of the current line. Made for the first line that arrives in pieces: a guest writing
	// whole lines never needs it, and a fleet's idle channels would each hold one.
	#pending: Uint8Array | undefined;
	#pendingLength = 0;
	// The current line was already reported as too long: drop the rest of it.
	#discarding = false;

	/** Feeds a chunk (a string is taken as UTF-8); returns the complete lines it finished. */
	push(chunk: Uint8Array | string): PayloadLine[] {
		const bytes = typeof chunk === 'string' ? utf8Encoder.encode(chunk) : chunk;
		const lines: PayloadLine[] = [];
		let start = 0;
		for (let newline = bytes.indexOf(LF); newline !== -1; newline = bytes.indexOf(LF, start)) {
			const line = this.#finish(bytes.subarray(start, newline));
			if (line !== undefined) {
				lines.push(line);
			}

			start = newline + 1;
		}

		const tail = bytes.subarray(start);
		if (this.#discarding) {
			return lines;
		}

		if (this.#pendingLength + tail.length > PENDING_CAPACITY) {
			// Reported once, as soon as it is certain, however many chunks the line still spans.
			lines.push(tooLong(this.#joined(tail, this.#pendingLength)));
			this.#pendingLength = 0;
			this.#discarding = true;
		} else if (tail.length > 0) {
			this.#pending ??= new Uint8Array(PENDING_CAPACITY);
			this.#pending.set(tail, this.#pendingLength);
			this.#pendingLength += tail.length;
		}

		return lines;
	}

	/** Ends the stream: a last line without a newline still counts. */
	end(): PayloadLine[] {
		if (this.#pendingLength === 0) {
			// Nothing, or the end of a line already reported as too long.
			this.#discarding = false;
			return [];
		}

		return [this.#finish(new Uint8Array(0))!];
	}

	/** Ends the current line with its last piece (`rest`); undefined for the end of a dropped line. */
	#finish(rest: Uint8Array): PayloadLine | undefined {
		const pendingLength = this.#pendingLength;
		this.#pendingLength = 0;
		if (this.#discarding) {
			this.#discarding = false;
			return undefined;
		}

		const total = pendingLength + rest.length;
		const last = rest.length > 0 ? rest.at(-1) : this.#pending?.[pendingLength - 1];
		const length = last === CR ? total - 1 : total;
		const whole = this.#joined(rest, pendingLength);
		return length > MAX_PAYLOAD_LINE_BYTES ? tooLong(whole) : parsePayloadLine(utf8.decode(whole.subarray(0, length)));
	}

	/** The pending bytes followed by the start of `rest`: no more than the buffer holds. */
	#joined(rest: Uint8Array, pendingLength: number): Uint8Array {
		const head = rest.subarray(0, PENDING_CAPACITY - pendingLength);
		const joined = new Uint8Array(pendingLength + head.length);
		if (this.#pending !== undefined) {
			joined.set(this.#pending.subarray(0, pendingLength));
		}

		joined.set(head, pendingLength);
		return joined;
	}
}
