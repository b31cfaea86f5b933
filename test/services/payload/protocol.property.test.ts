import {describe, expect, test} from '@jest/globals';
import fc from 'fast-check';
import {formatPayloadReport, MAX_PAYLOAD_LINE_BYTES, parsePayloadLine, PayloadLineDecoder, type PayloadLine, type PayloadReport} from '../../../src/services/payload/protocol.js';

/** The decoder's contract, written the slow and obvious way: split the whole input at every `\n`. */
function referenceDecode(bytes: Uint8Array): PayloadLine[] {
	const lines: PayloadLine[] = [];
	let start = 0;
	while (start < bytes.length) {
		const newline = bytes.indexOf(0x0A, start);
		const end = newline === -1 ? bytes.length : newline;
		let line = bytes.subarray(start, end);
		if (line.at(-1) === 0x0D) {
			line = line.subarray(0, -1);
		}

		lines.push(line.length > MAX_PAYLOAD_LINE_BYTES
			? {ok: false, line: new TextDecoder().decode(bytes.subarray(start, start + 320)).slice(0, 80), problem: `line longer than ${MAX_PAYLOAD_LINE_BYTES} bytes`}
			: parsePayloadLine(new TextDecoder().decode(line)));
		start = end + 1;
	}

	return lines;
}

/** Feeds `bytes` cut at `cuts` (positions, in any order) and ends the stream. */
function decodeInChunks(bytes: Uint8Array, cuts: number[]): PayloadLine[] {
	const positions = [...new Set(cuts.map(cut => cut % (bytes.length + 1)))].sort((a, b) => a - b);
	const decoder = new PayloadLineDecoder();
	const lines: PayloadLine[] = [];
	let start = 0;
	for (const position of [...positions, bytes.length]) {
		lines.push(...decoder.push(bytes.subarray(start, position)));
		start = position;
	}

	lines.push(...decoder.end());
	return lines;
}

const report: fc.Arbitrary<PayloadReport> = fc.oneof(
	fc.constant({type: 'started' as const}),
	fc.constant({type: 'ready' as const}),
	fc.record({type: fc.constant('finished' as const), exitCode: fc.integer({min: -(2 ** 31), max: 2 ** 31 - 1})}),
	fc.record({type: fc.constant('error' as const), code: fc.integer({min: -999_999_999, max: 999_999_999}), message: fc.string({maxLength: 40}).map(text => text.replaceAll(/[\r\n]/g, ' '))}),
);

const encoder = new TextEncoder();
// Pieces a hostile or sloppy guest writes: reports, CRLF, stray bytes, broken UTF-8, lines at the limit.
const piece = fc.oneof(
	report.map(value => encoder.encode(formatPayloadReport(value))),
	fc.constantFrom('\n', '\r\n', '\r', 'VMW1', ' ', 'VMW2 READY\n', 'é', '🙂').map(text => encoder.encode(text)),
	fc.uint8Array({maxLength: 24}),
	fc.constantFrom(new Uint8Array([0xF0, 0x9F]), new Uint8Array([0xC3]), new Uint8Array([0xFF])),
	fc.integer({min: MAX_PAYLOAD_LINE_BYTES - 3, max: MAX_PAYLOAD_LINE_BYTES + 3}).map(length => encoder.encode('x'.repeat(length))),
);
const stream = fc.array(piece, {maxLength: 30}).map(pieces => Uint8Array.from(pieces.flatMap(bytes => [...bytes])));
const cuts = fc.array(fc.nat(), {maxLength: 40});

describe('PayloadLineDecoder (property-based)', () => {
	test('agrees with the reference model, however the stream is cut into chunks', () => {
		fc.assert(fc.property(stream, cuts, (bytes, positions) => {
			expect(decodeInChunks(bytes, positions)).toEqual(referenceDecode(bytes));
		}), {numRuns: 300});
	});

	test('arbitrary bytes in arbitrary chunks: never throws, and one byte at a time gives the same lines', () => {
		fc.assert(fc.property(fc.uint8Array({maxLength: 600}), cuts, (bytes, positions) => {
			const expected = referenceDecode(bytes);
			expect(decodeInChunks(bytes, positions)).toEqual(expected);
			expect(decodeInChunks(bytes, [...bytes.keys()])).toEqual(expected);
		}));
	});

	test('every formatted report reads back as itself', () => {
		fc.assert(fc.property(report, value => {
			const lines = new PayloadLineDecoder().push(formatPayloadReport(value));
			expect(lines).toEqual([{ok: true, report: value}]);
		}));
	});

	test('the text form of a chunk is its UTF-8 bytes', () => {
		fc.assert(fc.property(fc.string({unit: 'grapheme', maxLength: 80}), fc.string({maxLength: 10}), (first, second) => {
			const text = `${first}\n${second}`;
			expect(new PayloadLineDecoder().push(text)).toEqual(new PayloadLineDecoder().push(encoder.encode(text)));
		}));
	});
});
