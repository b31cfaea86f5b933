/** The longest console line passed on whole: a longer one is cut into lines of this many bytes. */
export const MAX_CONSOLE_LINE_BYTES = 4096;

/** How many of the last lines the tail keeps, and at most how many bytes in all. */
export const CONSOLE_TAIL_LINES = 50;
export const CONSOLE_TAIL_BYTES = 16 * 1024;

const NEWLINE = 0x0A;

/** A line without its `\n` (and without a `\r` before it), decoded as UTF-8 (bad bytes become U+FFFD). */
function decodeLine(bytes: Buffer): string {
	const end = bytes.length > 0 && bytes.at(-1) === 0x0D ? bytes.length - 1 : bytes.length;
	return bytes.toString('utf8', 0, end);
}

/**
 * Cuts the guest's bytes into lines. Holds at most `MAX_CONSOLE_LINE_BYTES` of an unfinished line:
 * a guest that never writes a newline costs no more than that.
 */
export class LineSplitter {
	#pending: Buffer = Buffer.alloc(0);

	constructor(private readonly onLine: (line: string) => void) {}

	push(chunk: Buffer): void {
		let start = 0;
		for (let newline = chunk.indexOf(NEWLINE); newline !== -1; newline = chunk.indexOf(NEWLINE, start)) {
			this.#take(chunk.subarray(start, newline), true);
			start = newline + 1;
		}

		this.#take(chunk.subarray(start), false);
	}

	/** Passes on what is left of an unfinished line (the guest's last words before it died). */
	flush(): void {
		if (this.#pending.length > 0) {
			const line = this.#pending;
			this.#pending = Buffer.alloc(0);
			this.onLine(decodeLine(line));
		}
	}

	#take(part: Buffer, complete: boolean): void {
		let rest = part;
		while (this.#pending.length + rest.length > MAX_CONSOLE_LINE_BYTES) {
			const room = MAX_CONSOLE_LINE_BYTES - this.#pending.length;
			const line = Buffer.concat([this.#pending, rest.subarray(0, room)]);
			this.#pending = Buffer.alloc(0);
			rest = rest.subarray(room);
			this.onLine(decodeLine(line));
		}

		if (complete) {
			const line = this.#pending.length === 0 ? rest : Buffer.concat([this.#pending, rest]);
			this.#pending = Buffer.alloc(0);
			this.onLine(decodeLine(line));
		} else if (rest.length > 0) {
			// Copied: the chunk it came from must not stay alive for a few bytes of it.
			this.#pending = Buffer.concat([this.#pending, rest]);
		}
	}
}

/** The last lines, bounded by count and by bytes (a line over the byte bound is cut to its end). */
export class LineTail {
	readonly #lines: string[] = [];
	#bytes = 0;

	constructor(private readonly maxLines = CONSOLE_TAIL_LINES, private readonly maxBytes = CONSOLE_TAIL_BYTES) {}

	push(line: string): void {
		const kept = Buffer.byteLength(line) > this.maxBytes ? Buffer.from(line).subarray(-this.maxBytes).toString('utf8') : line;
		this.#lines.push(kept);
		this.#bytes += Buffer.byteLength(kept);
		while (this.#lines.length > this.maxLines || this.#bytes > this.maxBytes) {
			this.#bytes -= Buffer.byteLength(this.#lines.shift()!);
		}
	}

	lines(): string[] {
		return [...this.#lines];
	}
}
