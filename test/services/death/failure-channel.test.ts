import {PassThrough} from 'node:stream';
import {describe, expect, test} from '@jest/globals';
import {MAX_FAILURE_TEXT_BYTES, readFailureChannel} from '../../../src/services/death/failure-channel.js';

const never = new Promise<never>(() => undefined);

describe('readFailureChannel', () => {
	test('keeps everything up to the end of the channel', async () => {
		const stream = new PassThrough();
		const reading = readFailureChannel(stream, never);
		stream.write('MICRODROID_');
		stream.end('PAYLOAD_HAS_CHANGED|ctx');
		await expect(reading).resolves.toEqual({text: 'MICRODROID_PAYLOAD_HAS_CHANGED|ctx', truncated: false});
	});

	test('keeps at most 50,000 bytes and still drains the rest', async () => {
		const stream = new PassThrough({highWaterMark: 1024});
		const reading = readFailureChannel(stream, never);
		for (let index = 0; index < 70; index++) {
			stream.write('y'.repeat(1000));
		}

		stream.end();
		const {text, truncated} = await reading;
		expect(MAX_FAILURE_TEXT_BYTES).toBe(50_000);
		expect(text).toHaveLength(50_000);
		expect(truncated).toBe(true);
		expect(stream.readableLength).toBe(0);
	});

	test('a cap that falls inside a character keeps the characters before it, not half of it', async () => {
		const stream = new PassThrough();
		const reading = readFailureChannel(stream, never, {maxBytes: 5});
		stream.end('abcd🙂ef');
		await expect(reading).resolves.toEqual({text: 'abcd', truncated: true});
	});

	test.each([
		['a two-byte character', [0x61, 0xC3, 0xA9], 2, 'a'],
		['a two-byte lead of the lowest value', [0x61, 0xC0, 0x80], 2, 'a'],
		['a three-byte character cut after two', [0x61, 0xE0, 0xA0, 0x80], 3, 'a'],
		['a three-byte character cut after one', [0x61, 0xEF, 0xBF, 0xBD], 2, 'a'],
		['a four-byte character cut after three', [0x61, 0xF0, 0x9F, 0x99, 0x82], 4, 'a'],
		['a whole character at the cap', [0x61, 0xC3, 0xA9, 0x62], 3, 'aé'],
		['only stray continuation bytes', [0x80, 0x80, 0x80], 2, '\uFFFD\uFFFD'],
		['nothing kept at all', [0x61], 0, ''],
	])('the cap inside %s', async (_name, bytes, maxBytes, text) => {
		const stream = new PassThrough();
		const reading = readFailureChannel(stream, never, {maxBytes});
		stream.end(Uint8Array.from(bytes));
		await expect(reading).resolves.toEqual({text: JSON.parse(`"${text}"`) as string, truncated: true});
	});

	test('a channel read as text keeps the same bytes', async () => {
		const stream = new PassThrough();
		stream.setEncoding('utf8');
		const reading = readFailureChannel(stream, never, {maxBytes: 5});
		stream.end('abcdé');
		await expect(reading).resolves.toEqual({text: 'abcd', truncated: true});
	});

	test('finishes a bounded time after the exit although the write end stays open', async () => {
		const stream = new PassThrough();
		let exit!: () => void;
		const exited = new Promise<void>(resolve => {
			exit = resolve;
		});
		const reading = readFailureChannel(stream, exited, {graceMs: 50});
		stream.write('HANGUP|held');
		let settled = false;
		void reading.then(() => {
			settled = true;
		});
		await new Promise(resolve => {
			setTimeout(resolve, 150);
		});
		// Not before the exit: the text might still grow.
		expect(settled).toBe(false);
		const exitedAt = Date.now();
		exit();
		await expect(reading).resolves.toEqual({text: 'HANGUP|held', truncated: false});
		expect(Date.now() - exitedAt).toBeLessThan(1000);
		expect(stream.destroyed).toBe(true);
	});
});
