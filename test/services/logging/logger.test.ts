import {Writable} from 'node:stream';
import {describe, expect, test} from '@jest/globals';
import winston from 'winston';
import {vmLogger} from '../../../src/services/logging/logger.js';

/** A logger that renders lines with the caller's format and keeps the text it would print. */
function renderingLogger(format: winston.Logform.Format): {logger: winston.Logger; output: string[]} {
	const output: string[] = [];
	const sink = new Writable({
		write(chunk: Uint8Array, _encoding, callback) {
			output.push(Buffer.from(chunk).toString());
			callback();
		},
	});
	const logger = winston.createLogger({level: 'debug', format, transports: [new winston.transports.Stream({stream: sink})]});
	return {logger, output};
}

const forged = 'x\n2026-01-01 info [vm 9] VM died: SHUTDOWN\u001B[31m';
const printf = winston.format.printf(({level, message, label}) => `${level} [${String(label)}] ${String(message)}`);

describe('vmLogger', () => {
	test('a message from outside stays on one line and its escape sequences are shown, not obeyed', () => {
		const {logger, output} = renderingLogger(printf);
		vmLogger(logger, 9).warn(`Dropped ${forged}`);
		expect(output).toEqual(['warn [vm 9] Dropped x\\n2026-01-01 info [vm 9] VM died: SHUTDOWN\\u001b[31m\n']);
	});

	test('the CID stays a field, metadata strings and %s arguments are sanitized too', () => {
		const {logger, output} = renderingLogger(winston.format.combine(winston.format.splat(), winston.format.json()));
		vmLogger(logger, 9).info('guest said %s', forged, {detail: forged});
		expect(output).toHaveLength(1);
		// eslint-disable-next-line no-control-regex -- the point: no raw control character reached the log
		expect(output[0]!.trimEnd()).not.toMatch(/[\n\u001B]/);
		expect(JSON.parse(output[0]!)).toEqual({level: 'info', label: 'vm 9', cid: 9, message: 'guest said x\\n2026-01-01 info [vm 9] VM died: SHUTDOWN\\u001b[31m', detail: 'x\\n2026-01-01 info [vm 9] VM died: SHUTDOWN\\u001b[31m'});
	});

	test('an Error logged as is keeps its message, made safe', () => {
		const {logger, output} = renderingLogger(printf);
		vmLogger(logger, 4).error(new Error(forged));
		expect(output).toEqual(['error [vm 4] x\\n2026-01-01 info [vm 9] VM died: SHUTDOWN\\u001b[31m\n']);
	});

	test('a huge message is bounded', () => {
		const {logger, output} = renderingLogger(printf);
		vmLogger(logger, 4).info('z'.repeat(1_000_000));
		expect(output[0]!.length).toBeLessThan(8300);
		expect(output[0]).toMatch(/…\[\d+ more characters\]\n$/);
	});

	test('levels below the parent\'s level are still dropped', () => {
		const {logger, output} = renderingLogger(printf);
		logger.level = 'info';
		vmLogger(logger, 4).debug('quiet');
		expect(output).toEqual([]);
	});
});

describe('vmLogger with an Error as a %s argument', () => {
	test('its text is sanitized and kept', () => {
		const {logger, output} = renderingLogger(winston.format.combine(winston.format.splat(), printf));
		vmLogger(logger, 5).warn('read failed: %s', new Error('bad\u001B]0;title\u0007'));
		expect(output).toHaveLength(1);
		expect(output[0]).toMatch(/^warn \[vm 5\] read failed: Error: bad\\u001b\]0;title\\u0007\\n {4}at /);
		// eslint-disable-next-line no-control-regex -- the point: no raw control character reached the log
		expect(output[0]!.slice(0, -1)).not.toMatch(/[\n\u0007\u001B]/);
	});
});
