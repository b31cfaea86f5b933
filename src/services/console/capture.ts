import {closeSync, createWriteStream, write, writev, type WriteStream} from 'node:fs';
import type {Socket} from 'node:net';
import type winston from 'winston';
import {LineSplitter, LineTail} from './lines.js';
import type {CapturedOutput, VmOutputs} from './outputs.js';

/**
 * The file system a destination's write stream uses: Node's writes, and a close that does nothing. A
 * destroyed write stream closes its descriptor even with `autoClose: false`; this way a caller's
 * descriptor stays open, and vmwarden closes its own itself (`dispose`).
 */
const KEEP_OPEN = {
	write,
	writev,
	close(_fd: number, callback: (error: NodeJS.ErrnoException | null) => void): void {
		callback(null);
	},
};

export interface OutputCaptureOptions {
	output: CapturedOutput;
	/** The read end of the VMM's output. */
	reader: Socket;
	/** Where the bytes go on to, unchanged (the config's file or descriptor), if anywhere. */
	destination: number | undefined;
	/** Whether `destination` is vmwarden's to close (a path it opened) rather than the caller's. */
	ownsDestination: boolean;
	outputs: VmOutputs;
	logger: winston.Logger;
}

/**
 * Reads one output of the VMM as it is written: every byte goes on to the destination unchanged,
 * every line to `outputs` (subscribers are called, never waited for) and to a bounded tail. Memory
 * is bounded whatever the guest writes: one read chunk, the destination's write buffer, one
 * unfinished line and the tail (docs/operations.md). Only a destination that does not keep up
 * slows the guest, as it would without capture: reading pauses until the destination drains.
 */
export class OutputCapture {
	readonly output: CapturedOutput;
	/** Resolves once the VMM's end is closed and every byte reached the destination. */
	readonly finished: Promise<void>;
	readonly #reader: Socket;
	readonly #destination: WriteStream | undefined;
	readonly #tail = new LineTail();
	readonly #options: OutputCaptureOptions;
	#disposed = false;

	constructor(options: OutputCaptureOptions) {
		this.#options = options;
		this.output = options.output;
		this.#reader = options.reader;
		const {outputs, output, logger} = options;
		const splitter = new LineSplitter(line => {
			this.#tail.push(line);
			outputs.next(output, line);
		});
		this.#destination = options.destination === undefined ? undefined : createWriteStream('', {fd: options.destination, autoClose: false, fs: KEEP_OPEN});
		const destination = this.#destination;
		let destinationFailed = false;
		destination?.on('error', error => {
			// The guest goes on, and so does the capture; only the destination misses the rest.
			destinationFailed = true;
			logger.error(`Cannot write the ${output} to its destination: ${error.message}`);
			this.#reader.resume();
		});
		const written = destination === undefined ? Promise.resolve() : new Promise<void>(resolve => {
			destination.once('finish', resolve);
			destination.once('error', () => {
				resolve();
			});
			destination.once('close', resolve);
		});
		const ended = new Promise<void>(resolve => {
			this.#reader.once('close', resolve);
		});
		this.#reader.on('data', (chunk: Buffer) => {
			if (destination !== undefined && !destinationFailed && !destination.write(chunk)) {
				this.#reader.pause();
				destination.once('drain', () => this.#reader.resume());
			}

			splitter.push(chunk);
		});
		this.#reader.on('error', error => {
			logger.error(`Reading the ${output} failed: ${error.message}`);
		});
		this.finished = ended.then(async () => {
			// Disposed first (the grace ran out): the stream is completed and the destination let go.
			if (this.#disposed) {
				return;
			}

			splitter.flush();
			destination?.end();
			await written;
		});
	}

	/** The last lines, oldest first. */
	tail(): string[] {
		return this.#tail.lines();
	}

	/** Stops reading, completes the output's stream and closes what vmwarden opened. Idempotent. */
	dispose(): void {
		if (this.#disposed) {
			return;
		}

		this.#disposed = true;
		this.#reader.destroy();
		this.#destination?.destroy();
		this.#options.outputs.complete(this.output);
		if (this.#options.ownsDestination && this.#options.destination !== undefined) {
			try {
				closeSync(this.#options.destination);
			} catch {
				// Already closed.
			}
		}
	}
}
