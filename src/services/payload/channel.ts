import type {Readable} from 'node:stream';
import {fromCallback} from 'xstate';
import type winston from 'winston';
import {PayloadLineDecoder, type PayloadLine, type PayloadReport} from './protocol.js';
import type {PayloadState} from './state.js';

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

export interface PayloadChannelInput {
	stream: Readable | undefined;
	logger: winston.Logger;
}

/**
 * Reads VMW1 lines from the payload channel and sends each report to the VM; malformed lines are
 * logged and dropped. Stops listening (without closing the stream, which the VM owns) when stopped.
 */
export const payloadChannelReader = fromCallback<{type: 'NONE'}, PayloadChannelInput, PayloadReportEvent>(({input, sendBack}) => {
	const {stream, logger} = input;
	if (stream === undefined) {
		return;
	}

	const decoder = new PayloadLineDecoder();
	const deliver = (lines: PayloadLine[]) => {
		for (const line of lines) {
			if (line.ok) {
				sendBack({type: 'PAYLOAD.REPORT', state: payloadStateOf(line.report), initiator: 'guest', report: line.report});
			} else {
				logger.warn(`Dropped payload channel line ${JSON.stringify(line.line)}: ${line.problem}`);
			}
		}
	};

	// Stream handlers run outside XState's error routing: a failure is logged, never thrown.
	const onData = (chunk: Uint8Array) => {
		try {
			deliver(decoder.push(chunk));
		} catch (error) {
			logger.error(`Payload channel: ${String(error)}`);
		}
	};

	const onEnd = () => {
		try {
			deliver(decoder.end());
		} catch (error) {
			logger.error(`Payload channel: ${String(error)}`);
		}
	};

	const onError = (error: Error) => {
		logger.warn(`Payload channel read failed: ${error.message}`);
	};

	stream.on('data', onData);
	stream.once('end', onEnd);
	stream.on('error', onError);
	return () => {
		stream.off('data', onData);
		stream.off('end', onEnd);
		stream.off('error', onError);
	};
});
