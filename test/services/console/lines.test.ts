import {describe, expect, test} from '@jest/globals';
import fc from 'fast-check';
import {CONSOLE_TAIL_BYTES, CONSOLE_TAIL_LINES, LineSplitter, LineTail, MAX_CONSOLE_LINE_BYTES} from '../../../src/services/console/lines.js';

function split(chunks: Buffer[]): string[] {
	const lines: string[] = [];
	const splitter = new LineSplitter(line => lines.push(line));
	for (const chunk of chunks) {
		splitter.push(chunk);
	}

	splitter.flush();
	return lines;
}

describe('LineSplitter', () => {
	test('however the bytes are chunked, the lines are the same', () => {
		fc.assert(fc.property(fc.array(fc.string({maxLength: 40}), {maxLength: 20}), fc.array(fc.nat({max: 50}), {maxLength: 10}), (lines, cuts) => {
			const bytes = Buffer.from(lines.map(line => `${line.replaceAll('\n', ' ').replaceAll('\r', ' ')}\n`).join(''));
			const chunks: Buffer[] = [];
			let start = 0;
			for (const cut of [...cuts].sort((a, b) => a - b)) {
				const end = Math.min(bytes.length, cut);
				if (end > start) {
					chunks.push(bytes.subarray(start, end));
					start = end;
				}
			}

			chunks.push(bytes.subarray(start));
			expect(split(chunks)).toEqual(lines.map(line => line.replaceAll('\n', ' ').replaceAll('\r', ' ')));
		}));
	});

	test('a UTF-8 character split across chunks is decoded whole; CRLF loses its CR; the unfinished last line is flushed', () => {
		const text = Buffer.from('é\r\nlast');
		expect(split([text.subarray(0, 1), text.subarray(1)])).toEqual(['é', 'last']);
	});

	test('a line longer than the bound is passed on in pieces of MAX_CONSOLE_LINE_BYTES', () => {
		const lines = split([Buffer.alloc(MAX_CONSOLE_LINE_BYTES * 2 + 10, 'a'), Buffer.from('\n')]);
		expect(lines.map(line => line.length)).toEqual([MAX_CONSOLE_LINE_BYTES, MAX_CONSOLE_LINE_BYTES, 10]);
	});
});

describe('LineTail', () => {
	test('keeps the last lines, by count and by bytes', () => {
		const tail = new LineTail();
		for (let index = 0; index < CONSOLE_TAIL_LINES * 3; index++) {
			tail.push(`line ${index}`);
		}

		expect(tail.lines()).toHaveLength(CONSOLE_TAIL_LINES);
		expect(tail.lines().at(-1)).toBe(`line ${CONSOLE_TAIL_LINES * 3 - 1}`);
		const big = new LineTail();
		for (let index = 0; index < 10; index++) {
			big.push('x'.repeat(4096));
		}

		expect(big.lines().join('').length).toBeLessThanOrEqual(CONSOLE_TAIL_BYTES);
		expect(big.lines()).toHaveLength(CONSOLE_TAIL_BYTES / 4096);
	});
});
