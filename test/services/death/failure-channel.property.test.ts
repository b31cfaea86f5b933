import {PassThrough, Readable} from 'node:stream';
import {describe, expect, test} from '@jest/globals';
import fc from 'fast-check';
import {readFailureChannel} from '../../../src/services/death/failure-channel.js';

const never = new Promise<never>(() => undefined);

/** Writes `bytes` cut at `cuts` into a fresh channel and reads it with `maxBytes`. */
async function readInChunks(bytes: Uint8Array, cuts: number[], maxBytes: number) {
	const stream = new PassThrough();
	const reading = readFailureChannel(stream, never, {maxBytes});
	let start = 0;
	for (const point of [...new Set(cuts.map(cut => cut % (bytes.length + 1)))].sort((a, b) => a - b)) {
		stream.write(bytes.subarray(start, point));
		start = point;
	}

	stream.end(bytes.subarray(start));
	return reading;
}

const cuts = fc.array(fc.nat(), {maxLength: 10});

describe('readFailureChannel (property-based)', () => {
	test('arbitrary bytes in arbitrary chunks: at most the cap, truncated exactly when over it, never throws', async () => {
		await fc.assert(fc.asyncProperty(fc.uint8Array({maxLength: 300}), cuts, fc.integer({min: 0, max: 320}), async (bytes, positions, maxBytes) => {
			const {text, truncated} = await readInChunks(bytes, positions, maxBytes);
			expect(truncated).toBe(bytes.length > maxBytes);
			if (!truncated) {
				expect(text).toBe(new TextDecoder().decode(bytes));
			}

			// The first bytes up to the cap, or up to three fewer where the cap cut a character.
			const prefixes = [0, 1, 2, 3].filter(short => short <= maxBytes).map(short => new TextDecoder().decode(bytes.subarray(0, Math.min(bytes.length, maxBytes - short))));
			expect(prefixes).toContain(text);
		}));
	});

	test('text the guest wrote as UTF-8 is kept as a prefix of itself, never with half a character', async () => {
		await fc.assert(fc.asyncProperty(fc.string({unit: 'grapheme', maxLength: 80}), cuts, fc.integer({min: 0, max: 200}), async (written, positions, maxBytes) => {
			const bytes = new TextEncoder().encode(written);
			const {text, truncated} = await readInChunks(bytes, positions, maxBytes);
			expect(written.startsWith(text)).toBe(true);
			const keptBytes = Buffer.byteLength(text);
			expect(keptBytes).toBeLessThanOrEqual(maxBytes);
			expect(keptBytes).toBeGreaterThan(truncated ? maxBytes - 4 : bytes.length - 1);
		}));
	});
});

describe('readFailureChannel under a flood', () => {
	test('64 MB written: the memory kept is the cap, not the flood', async () => {
		const chunk = Buffer.alloc(64 * 1024, 'f');
		let left = 64 * 1024 * 1024;
		const stream = new Readable({
			read() {
				left -= chunk.length;
				this.push(left >= 0 ? chunk : null);
			},
		});
		const before = process.memoryUsage();
		const {text, truncated} = await readFailureChannel(stream, never);
		const after = process.memoryUsage();
		expect(truncated).toBe(true);
		expect(text).toHaveLength(50_000);
		expect(after.heapUsed + after.arrayBuffers - before.heapUsed - before.arrayBuffers).toBeLessThan(16 * 1024 * 1024);
	});
});
