import type {Readable} from 'node:stream';
import {fromCallback} from 'xstate';
import type winston from 'winston';
import {RateLimitedLog} from '../logging/rate-limited-log.js';
import {sanitizeForLog} from '../logging/sanitize.js';
import {PayloadLineDecoder, type PayloadLine, type PayloadReport} from './protocol.js';
import {PAYLOAD_STATES, payloadStateRank, type PayloadState} from './state.js';

/** The event the payload channel sends its VM: a guest report, already mapped to a payload state. */
export interface PayloadReportEvent {
	type: 'PAYLOAD.REPORT';
	state: PayloadState;
	initiator: 'guest';
	report: PayloadReport;
}

/** Where a report moves the payload. An error ends the payload, as Android's `notifyError` does. */
export function payloadStateOf(report: PayloadReport): PayloadState {
	switch (report.type) {
		case 'started': {
			return 'Started';
		}

		case 'ready': {
			return 'Ready';
		}

		case 'finished':
		case 'error': {
			return 'Finished';
		}
	}
}

/** How the reader bounds what a guest can make the host do. */
export const PAYLOAD_CHANNEL_LIMITS = {
	/** Malformed lines logged one by one; after that, only counts are. */
	malformedLinesLogged: 5,
	/** How many characters of a malformed line a log line shows. */
	malformedLineCharacters: 200,
	/** How often the count of malformed lines not logged is. */
	summaryIntervalMs: 10_000,
	/**
	 * Reports that cannot move the payload forward (no further than one the reader already sent)
	 * still sent to the VM, which refuses each with an event; later ones are dropped and counted.
	 */
	refusedReportsSent: 16,
	/** The most bytes decoded before the reader lets the event loop run. */
	sliceBytes: 16 * 1024,
} as const;

export interface PayloadChannelInput {
	stream: Readable | undefined;
	logger: winston.Logger;
	/** The clock for the log's intervals; `Date.now` unless a test drives it. */
	now?: () => number;
}

/**
 * Reads VMW1 lines from the payload channel and sends reports to the VM. Everything the guest
 * writes is bounded: a line by the decoder, the log by a rate limit (malformed lines are logged
 * truncated and escaped, the first few one by one, then counted), the events by dropping reports
 * that can only be refused once the VM has refused a few. A flood is decoded a slice at a time
 * with the stream paused in between, so the host's event loop (and the VMM's exit) still runs.
 * Stops listening (without closing the stream, which the VM owns) when stopped.
 */
export const payloadChannelReader = fromCallback<{type: 'NONE'}, PayloadChannelInput, PayloadReportEvent>(({input, sendBack}) => {
	const {stream} = input;
	if (stream === undefined) {
		return;
	}

	const reading = new ChannelReading(stream, input.logger, sendBack, input.now);
	return () => {
		reading.stop();
	};
});

/**
 * One channel's reading. A class rather than closures over the reader's state: a fleet holds one
 * per running VM, and its methods are shared; the rate-limited logs are made for the first line
 * they note.
 */
class ChannelReading {
	readonly #decoder = new PayloadLineDecoder();
	#malformed: RateLimitedLog | undefined;
	#dropped: RateLimitedLog | undefined;
	#furthestSent = payloadStateRank('Starting');
	#refusedSent = 0;
	#lines = 0;
	#stopped = false;
	#ended = false;
	#backlog: Uint8Array | undefined;
	#immediate: NodeJS.Immediate | undefined;
	// Bytes decoded since the event loop last ran: small chunks yield too, once they add up.
	#sinceYield = 0;
	readonly #onData = this.#data.bind(this);
	readonly #onEnd = this.#end.bind(this);
	readonly #onError = this.#error.bind(this);

	constructor(
		private readonly stream: Readable,
		private readonly logger: winston.Logger,
		private readonly sendBack: (event: PayloadReportEvent) => void,
		private readonly now: (() => number) | undefined,
	) {
		stream.on('data', this.#onData);
		stream.once('end', this.#onEnd);
		stream.on('error', this.#onError);
	}

	stop(): void {
		const {stream} = this;
		this.#stopped = true;
		clearImmediate(this.#immediate);
		stream.off('data', this.#onData);
		stream.off('end', this.#onEnd);
		stream.off('error', this.#onError);
		// As before the reader paused it: what the guest still writes is read and dropped.
		if (!stream.destroyed) {
			stream.resume();
		}

		this.#malformed?.close();
		this.#dropped?.close();
	}

	#send(report: PayloadReport): void {
		const limits = PAYLOAD_CHANNEL_LIMITS;
		const state = payloadStateOf(report);
		const forward = payloadStateRank(state) > this.#furthestSent;
		if (!forward && this.#refusedSent >= limits.refusedReportsSent) {
			const furthest = PAYLOAD_STATES[this.#furthestSent];
			this.#dropped ??= new RateLimitedLog(this.logger, {what: 'payload reports dropped (each could only be refused)', burst: 1, intervalMs: limits.summaryIntervalMs, now: this.now});
			this.#dropped.note(() => `Dropped a payload report to ${state}: the payload is already at ${furthest} or beyond`);
			return;
		}

		if (forward) {
			this.#furthestSent = payloadStateRank(state);
		} else {
			this.#refusedSent++;
		}

		this.sendBack({type: 'PAYLOAD.REPORT', state, initiator: 'guest', report});
	}

	#deliver(decoded: PayloadLine[]): void {
		const limits = PAYLOAD_CHANNEL_LIMITS;
		this.#lines += decoded.length;
		for (const line of decoded) {
			if (line.ok) {
				this.#send(line.report);
			} else {
				this.#malformed ??= new RateLimitedLog(this.logger, {what: 'malformed payload channel lines', burst: limits.malformedLinesLogged, intervalMs: limits.summaryIntervalMs, now: this.now});
				this.#malformed.note(() => `Dropped payload channel line "${sanitizeForLog(line.line, limits.malformedLineCharacters)}": ${line.problem}`);
			}
		}
	}

	#finish(): void {
		this.#deliver(this.#decoder.end());
		this.#malformed?.close();
		this.#dropped?.close();
		this.logger.debug(`Payload channel ended after ${this.#lines} lines`);
	}

	// Stream handlers run outside XState's error routing: a failure is logged, never thrown.
	#guarded(work: () => void): void {
		try {
			work();
		} catch (error) {
			this.logger.error(`Payload channel: ${sanitizeForLog(String(error), 1000)}`);
		}
	}

	#resume(): void {
		this.#immediate = undefined;
		this.stream.resume();
	}

	// Decodes one slice of the backlog; yields to the event loop before the next.
	#decodeSlice(): void {
		const limits = PAYLOAD_CHANNEL_LIMITS;
		this.#immediate = undefined;
		const chunk = this.#backlog!;
		const slice = chunk.subarray(0, limits.sliceBytes);
		this.#backlog = chunk.length > limits.sliceBytes ? chunk.subarray(limits.sliceBytes) : undefined;
		this.#guarded(() => {
			this.#deliver(this.#decoder.push(slice));
		});
		if (this.#stopped) {
			return;
		}

		this.#sinceYield += slice.length;
		if (this.#backlog !== undefined) {
			this.#sinceYield = 0;
			this.#immediate = setImmediate(() => {
				this.#decodeSlice();
			});
		} else if (this.#ended) {
			this.#guarded(() => {
				this.#finish();
			});
		} else if (this.#sinceYield >= limits.sliceBytes) {
			// A paused stream resumes on the next tick, before any I/O: wait for a turn of the loop.
			this.#sinceYield = 0;
			this.#immediate = setImmediate(() => {
				this.#resume();
			});
		} else {
			this.stream.resume();
		}
	}

	#data(chunk: Uint8Array | string): void {
		// Several buffered chunks can arrive in one tick: pausing makes each wait for its turn.
		this.stream.pause();
		this.#backlog = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
		this.#decodeSlice();
	}

	#end(): void {
		this.#ended = true;
		if (this.#backlog === undefined) {
			this.#guarded(() => {
				this.#finish();
			});
		}
	}

	#error(error: Error): void {
		this.logger.warn(`Payload channel read failed: ${sanitizeForLog(error.message, 1000)}`);
	}
}
