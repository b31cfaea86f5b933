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
	const {stream, logger, now} = input;
	if (stream === undefined) {
		return;
	}

	const limits = PAYLOAD_CHANNEL_LIMITS;
	const decoder = new PayloadLineDecoder();
	const malformed = new RateLimitedLog(logger, {what: 'malformed payload channel lines', burst: limits.malformedLinesLogged, intervalMs: limits.summaryIntervalMs, now});
	const dropped = new RateLimitedLog(logger, {what: 'payload reports dropped (each could only be refused)', burst: 1, intervalMs: limits.summaryIntervalMs, now});
	let furthestSent = payloadStateRank('Starting');
	let refusedSent = 0;

	const send = (report: PayloadReport) => {
		const state = payloadStateOf(report);
		const forward = payloadStateRank(state) > furthestSent;
		if (!forward && refusedSent >= limits.refusedReportsSent) {
			dropped.note(() => `Dropped a payload report to ${state}: the payload is already at ${PAYLOAD_STATES[furthestSent]} or beyond`);
			return;
		}

		if (forward) {
			furthestSent = payloadStateRank(state);
		} else {
			refusedSent++;
		}

		sendBack({type: 'PAYLOAD.REPORT', state, initiator: 'guest', report});
	};

	const deliver = (decoded: PayloadLine[]) => {
		lines += decoded.length;
		for (const line of decoded) {
			if (line.ok) {
				send(line.report);
			} else {
				malformed.note(() => `Dropped payload channel line "${sanitizeForLog(line.line, limits.malformedLineCharacters)}": ${line.problem}`);
			}
		}
	};

	let stopped = false;
	let ended = false;
	let backlog: Uint8Array | undefined;
	let immediate: NodeJS.Immediate | undefined;

	let lines = 0;
	const finish = () => {
		deliver(decoder.end());
		malformed.close();
		dropped.close();
		logger.debug(`Payload channel ended after ${lines} lines`);
	};

	// Stream handlers run outside XState's error routing: a failure is logged, never thrown.
	const guarded = (work: () => void) => {
		try {
			work();
		} catch (error) {
			logger.error(`Payload channel: ${sanitizeForLog(String(error), 1000)}`);
		}
	};

	// Bytes decoded since the event loop last ran: small chunks yield too, once they add up.
	let sinceYield = 0;
	const resume = () => {
		immediate = undefined;
		stream.resume();
	};

	// Decodes one slice of the backlog; yields to the event loop before the next.
	const decodeSlice = () => {
		immediate = undefined;
		const chunk = backlog!;
		const slice = chunk.subarray(0, limits.sliceBytes);
		backlog = chunk.length > limits.sliceBytes ? chunk.subarray(limits.sliceBytes) : undefined;
		guarded(() => {
			deliver(decoder.push(slice));
		});
		if (stopped) {
			return;
		}

		sinceYield += slice.length;
		if (backlog !== undefined) {
			sinceYield = 0;
			immediate = setImmediate(decodeSlice);
		} else if (ended) {
			guarded(finish);
		} else if (sinceYield >= limits.sliceBytes) {
			// A paused stream resumes on the next tick, before any I/O: wait for a turn of the loop.
			sinceYield = 0;
			immediate = setImmediate(resume);
		} else {
			stream.resume();
		}
	};

	const onData = (chunk: Uint8Array | string) => {
		// Several buffered chunks can arrive in one tick: pausing makes each wait for its turn.
		stream.pause();
		backlog = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
		decodeSlice();
	};

	const onEnd = () => {
		ended = true;
		if (backlog === undefined) {
			guarded(finish);
		}
	};

	const onError = (error: Error) => {
		logger.warn(`Payload channel read failed: ${sanitizeForLog(error.message, 1000)}`);
	};

	stream.on('data', onData);
	stream.once('end', onEnd);
	stream.on('error', onError);
	return () => {
		stopped = true;
		clearImmediate(immediate);
		stream.off('data', onData);
		stream.off('end', onEnd);
		stream.off('error', onError);
		// As before the reader paused it: what the guest still writes is read and dropped.
		if (!stream.destroyed) {
			stream.resume();
		}

		malformed.close();
		dropped.close();
	};
});
