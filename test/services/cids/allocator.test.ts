import fc from 'fast-check';
import {InvalidConfigError, NoAvailableCidError} from '../../../src/errors.js';
import {allocateCid, createCidPool, hasFreeCid, holdCid, isCidHeld, nextFreeCid, releaseCid, validateCidRange} from '../../../src/services/cids/allocator.js';
import {DEFAULT_CID_RANGE, type CidRange} from '../../../src/services/cids/range.js';

/** The rule in its plainest form: from last + 1, wrap to the bottom, skip held CIDs. */
function referenceAllocate(range: CidRange, held: Set<number>, last: number | undefined): number | undefined {
	const size = range.last - range.first + 1;
	const start = last === undefined ? range.first : last + 1;
	for (let step = 0; step < size; step++) {
		const candidate = range.first + ((start - range.first + step) % size);
		if (!held.has(candidate)) {
			return candidate;
		}
	}

	return undefined;
}

describe('CID allocation', () => {
	test('starts at the bottom of the default range and counts up', () => {
		const pool = createCidPool(DEFAULT_CID_RANGE);
		expect([allocateCid(pool), allocateCid(pool), allocateCid(pool)]).toEqual([2048, 2049, 2050]);
	});

	test('continues after the last allocated CID even when a lower one was freed', () => {
		const pool = createCidPool({first: 10, last: 20});
		expect([allocateCid(pool), allocateCid(pool), allocateCid(pool)]).toEqual([10, 11, 12]);
		releaseCid(pool, 10);
		expect(allocateCid(pool)).toBe(13);
	});

	test('wraps to the bottom after the top and skips held CIDs', () => {
		const pool = createCidPool({first: 10, last: 14});
		for (let cid = 10; cid <= 14; cid++) {
			expect(allocateCid(pool)).toBe(cid);
		}

		releaseCid(pool, 12);
		releaseCid(pool, 14);
		// After 14 comes 10 (held), 11 (held), then 12.
		expect(allocateCid(pool)).toBe(12);
		expect(allocateCid(pool)).toBe(14);
	});

	test('starts after a persisted last CID, and ignores one outside the range', () => {
		expect(allocateCid(createCidPool({first: 10, last: 20}, {lastAllocated: 15}))).toBe(16);
		expect(allocateCid(createCidPool({first: 10, last: 20}, {lastAllocated: 20}))).toBe(10);
		expect(allocateCid(createCidPool({first: 10, last: 20}, {lastAllocated: 99}))).toBe(10);
	});

	test('skips CIDs held from the start (a previous instance\'s VMs)', () => {
		const pool = createCidPool({first: 10, last: 20}, {held: [10, 11, 13]});
		expect([allocateCid(pool), allocateCid(pool)]).toEqual([12, 14]);
	});

	test('exhaustion throws NoAvailableCidError and changes nothing', () => {
		const pool = createCidPool({first: 100, last: 102});
		allocateCid(pool);
		allocateCid(pool);
		allocateCid(pool);
		const before = {held: pool.held, last: pool.lastAllocated, levels: pool.levels.map(level => [...level])};
		let error: unknown;
		try {
			allocateCid(pool);
		} catch (error_) {
			error = error_;
		}

		expect(error).toBeInstanceOf(NoAvailableCidError);
		expect((error as NoAvailableCidError).code).toBe('NO_AVAILABLE_CID');
		expect((error as Error).message).toMatch(/no available CID/);
		expect({held: pool.held, last: pool.lastAllocated, levels: pool.levels.map(level => [...level])}).toEqual(before);
		expect(hasFreeCid(pool)).toBe(false);
		releaseCid(pool, 101);
		expect(allocateCid(pool)).toBe(101);
	});

	test('hold and release report whether they changed anything', () => {
		const pool = createCidPool({first: 10, last: 20});
		expect(holdCid(pool, 15)).toBe(true);
		expect(holdCid(pool, 15)).toBe(false);
		expect(holdCid(pool, 9)).toBe(false);
		expect(isCidHeld(pool, 15)).toBe(true);
		expect(releaseCid(pool, 15)).toBe(true);
		expect(releaseCid(pool, 15)).toBe(false);
		expect(pool.held).toBe(0);
	});

	test('the whole default range can be held and freed (every bitmap level is exercised)', () => {
		const pool = createCidPool(DEFAULT_CID_RANGE);
		const mismatches: number[] = [];
		for (let cid = 2048; cid <= 65_535; cid++) {
			if (allocateCid(pool) !== cid) {
				mismatches.push(cid);
			}
		}

		expect(mismatches).toEqual([]);

		expect(nextFreeCid(pool)).toBeUndefined();
		releaseCid(pool, 40_000);
		releaseCid(pool, 3000);
		expect(allocateCid(pool)).toBe(3000);
		expect(allocateCid(pool)).toBe(40_000);
	});

	test('matches the plain rule for any sequence of allocations and releases', () => {
		const range = {first: 3, last: 3 + 1100};
		const operation = fc.oneof(
			fc.constant({kind: 'allocate' as const, cid: 0}),
			fc.record({kind: fc.constant('release' as const), cid: fc.integer({min: range.first, max: range.last})}),
			fc.record({kind: fc.constant('burst' as const), cid: fc.integer({min: 1, max: 300})}),
		);
		fc.assert(fc.property(fc.array(operation, {maxLength: 60}), operations => {
			const pool = createCidPool(range);
			const held = new Set<number>();
			let last: number | undefined;
			for (const {kind, cid} of operations) {
				const rounds = kind === 'burst' ? cid : 1;
				if (kind === 'release') {
					expect(releaseCid(pool, cid)).toBe(held.delete(cid));
					continue;
				}

				for (let round = 0; round < rounds; round++) {
					const expected = referenceAllocate(range, held, last);
					if (expected === undefined) {
						expect(() => allocateCid(pool)).toThrow(NoAvailableCidError);
						continue;
					}

					expect(allocateCid(pool)).toBe(expected);
					held.add(expected);
					last = expected;
				}
			}

			expect(pool.held).toBe(held.size);
		}), {numRuns: 150});
	});
});

describe('cidRange validation', () => {
	test.each([
		[null, 'cidRange'],
		[{first: 2048}, 'cidRange.last'],
		[{first: 1.5, last: 10}, 'cidRange.first'],
		[{first: 2, last: 10}, 'cidRange.first'],
		[{first: 10, last: 0xFF_FF_FF_FF}, 'cidRange.last'],
		[{first: 20, last: 10}, 'cidRange'],
		[{first: 3, last: 3 + (1 << 22)}, 'cidRange'],
	])('%j is refused naming %s', (range, field) => {
		let error: unknown;
		try {
			validateCidRange(range);
		} catch (error_) {
			error = error_;
		}

		expect(error).toBeInstanceOf(InvalidConfigError);
		expect((error as InvalidConfigError).field).toBe(field);
	});

	test('a valid range is returned as a copy', () => {
		const range = {first: 3, last: 3};
		expect(validateCidRange(range)).toEqual({first: 3, last: 3});
		expect(validateCidRange(range)).not.toBe(range);
	});
});
