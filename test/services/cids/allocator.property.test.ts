import {mkdtempSync, rmSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {describe, expect, test} from '@jest/globals';
import fc from 'fast-check';
import {allocateCid, createCidPool, describeCidPool, hasFreeCid, isCidHeld, releaseCid} from '../../../src/services/cids/allocator.js';
import {readLastCid, writeLastCid} from '../../../src/services/cids/store.js';
import {createSupervisor} from '../../../src/supervisor.js';
import {silentLogger} from '../../helpers/vm-fixture.js';
import {NoAvailableCidError} from '../../../src/errors.js';
import type {CidRange} from '../../../src/services/cids/range.js';

/**
 * The reference allocator the pool must agree with: a plain scan from the last allocated CID + 1,
 * wrapping to the bottom of the range, skipping held CIDs.
 */
function referenceNext(range: CidRange, held: ReadonlySet<number>, last: number | undefined): number | undefined {
	const size = range.last - range.first + 1;
	const start = last === undefined ? 0 : last - range.first + 1;
	for (let step = 0; step < size; step++) {
		const cid = range.first + ((start + step) % size);
		if (!held.has(cid)) {
			return cid;
		}
	}

	return undefined;
}

/** Ranges small enough to exhaust, anywhere in the guest CID space, sometimes across a bitmap word or two. */
const ranges = fc.tuple(fc.integer({min: 3, max: 0xFF_FF_FF_FE - 200}), fc.oneof(fc.integer({min: 1, max: 40}), fc.integer({min: 60, max: 140})))
	.map(([first, size]): CidRange => ({first, last: first + size - 1}));

type Operation = {kind: 'allocate'} | {kind: 'release'; pick: number};
const operations = fc.array(fc.oneof(
	{weight: 3, arbitrary: fc.constant<Operation>({kind: 'allocate'})},
	{weight: 2, arbitrary: fc.nat().map((pick): Operation => ({kind: 'release', pick}))},
), {maxLength: 400});

describe('CID allocator (property-based)', () => {
	test('never hands out a held CID, allocates in order with wrap and skip, and refuses exactly when exhausted without changing anything', () => {
		fc.assert(fc.property(ranges, operations, fc.option(fc.nat(), {nil: undefined}), (range, ops, lastSeed) => {
			const size = range.last - range.first + 1;
			const lastAllocated = lastSeed === undefined ? undefined : range.first + (lastSeed % size);
			const pool = createCidPool(range, {lastAllocated});
			const held = new Set<number>();
			let last = lastAllocated;
			for (const op of ops) {
				if (op.kind === 'allocate') {
					const expected = referenceNext(range, held, last);
					if (expected === undefined) {
						const before = describeCidPool(pool);
						expect(() => allocateCid(pool)).toThrow(NoAvailableCidError);
						expect(describeCidPool(pool)).toEqual(before);
						expect(hasFreeCid(pool)).toBe(false);
						continue;
					}

					const cid = allocateCid(pool);
					// Never two live VMs with one CID, and always the CID the plain scan finds.
					expect(held.has(cid)).toBe(false);
					expect(cid).toBe(expected);
					held.add(cid);
					last = cid;
				} else if (held.size > 0) {
					const cid = [...held][op.pick % held.size]!;
					expect(releaseCid(pool, cid)).toBe(true);
					held.delete(cid);
					// A second release of the same CID changes nothing.
					expect(releaseCid(pool, cid)).toBe(false);
				}

				expect(pool.held).toBe(held.size);
			}

			for (let cid = range.first; cid <= Math.min(range.last, range.first + 200); cid++) {
				expect(isCidHeld(pool, cid)).toBe(held.has(cid));
			}
		}), {numRuns: 300});
	});

	test('a pool started with held CIDs (a previous instance\'s VMs) skips them until they are released', () => {
		fc.assert(fc.property(ranges, fc.array(fc.nat(), {maxLength: 30}), (range, picks) => {
			const size = range.last - range.first + 1;
			const stale = new Set(picks.map(pick => range.first + (pick % size)));
			const pool = createCidPool(range, {held: stale});
			const allocated: number[] = [];
			while (hasFreeCid(pool)) {
				allocated.push(allocateCid(pool));
			}

			expect(allocated.some(cid => stale.has(cid))).toBe(false);
			expect(allocated.length + stale.size).toBe(size);
		}), {numRuns: 200});
	});

	test('the last allocated CID survives a restart: write, read, and the next pool continues after it', () => {
		const stateDir = mkdtempSync(path.join(tmpdir(), 'vmw-cid-store-'));
		try {
			fc.assert(fc.property(ranges, fc.nat(), (range, offset) => {
				const size = range.last - range.first + 1;
				const last = range.first + (offset % size);
				writeLastCid(stateDir, last);
				const restored = readLastCid(stateDir);
				expect(restored).toBe(last);
				const pool = createCidPool(range, {lastAllocated: restored});
				expect(allocateCid(pool)).toBe(last === range.last ? range.first : last + 1);
			}), {numRuns: 100});
		} finally {
			rmSync(stateDir, {recursive: true, force: true});
		}
	});

	test('across supervisor instances sharing a state directory, recent CIDs are not reused', async () => {
		// createVm allocates without starting anything, so no process is spawned here.
		await fc.assert(fc.asyncProperty(fc.array(fc.integer({min: 0, max: 5}), {minLength: 1, maxLength: 5}), async creationsPerInstance => {
			const stateDir = mkdtempSync(path.join(tmpdir(), 'vmw-cid-restart-'));
			const range = {first: 5000, last: 5006};
			const kernel = path.join(stateDir, 'kernel');
			writeFileSync(kernel, '#!crosvm-sim-guest\n');
			try {
				const all: number[] = [];
				for (const creations of creationsPerInstance) {
					const supervisor = createSupervisor({stateDir, cidRange: range, logger: silentLogger(), crosvmPath: '/nonexistent/crosvm'});
					await supervisor.reaped;
					for (let index = 0; index < creations; index++) {
						all.push((await supervisor.createVm({kernel})).cid);
					}

					await supervisor.shutdown();
				}

				// The sequence continues across restarts exactly as one long-lived allocator would.
				const size = range.last - range.first + 1;
				expect(all).toEqual(all.map((_cid, index) => range.first + (index % size)));
			} finally {
				rmSync(stateDir, {recursive: true, force: true});
			}
		}), {numRuns: 25});
	});
});
