import {describe, expect, test} from '@jest/globals';
import fc from 'fast-check';
import {admitRestart, type RestartWindow} from '../../../src/services/restart/intensity.js';

/** The plain definition: a restart is admitted when fewer than maxRestarts admitted ones are younger than the window. */
function referenceAdmits(admitted: number[], now: number, maxRestarts: number, windowMs: number): boolean {
	return admitted.filter(time => now - time < windowMs).length < maxRestarts;
}

const requests = fc.array(fc.nat(5000), {maxLength: 60}).map(gaps => {
	let now = 0;
	return gaps.map(gap => (now += gap));
});

describe('intensity window', () => {
	test('admits a restart exactly when the plain definition does, and never holds more than maxRestarts', () => {
		fc.assert(fc.property(fc.nat(10), fc.integer({min: 0, max: 20_000}), requests, (maxRestarts, windowMs, times) => {
			let window: RestartWindow = [];
			const admitted: number[] = [];
			for (const now of times) {
				const expected = referenceAdmits(admitted, now, maxRestarts, windowMs);
				const result = admitRestart(window, now, {maxRestarts, windowMs});
				expect(result.allowed).toBe(expected);
				if (result.allowed) {
					admitted.push(now);
				}

				window = result.window;
				expect(window.length).toBeLessThanOrEqual(maxRestarts);
			}
		}));
	});

	test('within any window no more than maxRestarts restarts are admitted', () => {
		fc.assert(fc.property(fc.integer({min: 1, max: 10}), fc.integer({min: 1, max: 20_000}), requests, (maxRestarts, windowMs, times) => {
			let window: RestartWindow = [];
			const admitted: number[] = [];
			for (const now of times) {
				const result = admitRestart(window, now, {maxRestarts, windowMs});
				window = result.window;
				if (result.allowed) {
					admitted.push(now);
				}
			}

			for (const start of admitted) {
				expect(admitted.filter(time => time >= start && time - start < windowMs).length).toBeLessThanOrEqual(maxRestarts);
			}
		}));
	});

	test('a restart burst beyond the limit is admitted again once the window has passed', () => {
		const intensity = {maxRestarts: 2, windowMs: 100};
		let {window} = admitRestart([], 0, intensity);
		({window} = admitRestart(window, 10, intensity));
		expect(admitRestart(window, 99, intensity).allowed).toBe(false);
		expect(admitRestart(window, 100, intensity).allowed).toBe(true);
	});
});
