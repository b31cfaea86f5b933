import {InvalidConfigError, NoAvailableCidError} from '../../errors.js';
import {cidRangeSize, HIGHEST_GUEST_CID, LOWEST_GUEST_CID, type CidRange} from './range.js';



/** The pool keeps one bit per CID; this caps its memory at 512 KiB per level-0 bitmap. */
export const MAX_CID_RANGE_SIZE = 1 << 22;

/**
 * Checks a caller's `cidRange`, returning a copy; throws `InvalidConfigError` naming `cidRange` and
 * the reason.
 */
export function validateCidRange(range: unknown): CidRange {
	if (typeof range !== 'object' || range === null) {
		throw new InvalidConfigError('cidRange', 'must be an object {first, last}');
	}

	const {first, last} = range as Record<string, unknown>;
	for (const [name, value] of [['first', first], ['last', last]] as const) {
		if (typeof value !== 'number' || !Number.isInteger(value)) {
			throw new InvalidConfigError(`cidRange.${name}`, `must be an integer, got ${String(value)}`);
		}

		if (value < LOWEST_GUEST_CID || value > HIGHEST_GUEST_CID) {
			throw new InvalidConfigError(`cidRange.${name}`, `must be within ${LOWEST_GUEST_CID}..${HIGHEST_GUEST_CID}, got ${value}`);
		}
	}

	const checked = {first: first as number, last: last as number};
	if (checked.first > checked.last) {
		throw new InvalidConfigError('cidRange', `first (${checked.first}) is above last (${checked.last})`);
	}

	if (cidRangeSize(checked) > MAX_CID_RANGE_SIZE) {
		throw new InvalidConfigError('cidRange', `spans ${cidRangeSize(checked)} CIDs, more than ${MAX_CID_RANGE_SIZE}`);
	}

	return checked;
}

/**
 * The free CIDs of a range as a hierarchical bitmap: level 0 has one bit per CID (set = free), each
 * higher level one bit per word of the level below (set = that word has a free CID). Finding the
 * next free CID after any point, holding and releasing each touch one word per level: at most 4
 * levels for the default range, 5 for the largest, whatever the number of CIDs held. A scan from
 * `last + 1` would instead walk every held CID in its way.
 *
 * The helpers below have no I/O and no clock; they update the pool in place so that an allocation
 * costs the same with 60,000 CIDs held as with none (copying the bitmap would not).
 */
export interface CidPool {
	readonly range: CidRange;
	/** The most recently allocated CID, where the next search starts (+1). */
	lastAllocated: number | undefined;
	/** How many CIDs are held. */
	held: number;
	/** `levels[0]`: a bit per CID offset; `levels[k]`: a bit per word of `levels[k - 1]`. */
	readonly levels: Uint32Array[];
}

/** What `createCidPool` may start from. */
export interface CidPoolOptions {
	/** The last CID a previous supervisor allocated (persisted in its state directory). */
	lastAllocated?: number;
	/** CIDs that are already held (a previous instance's VMs, until they are reaped). */
	held?: Iterable<number>;
}

/** Creates a pool with every CID of `range` free except `options.held`. */
export function createCidPool(range: CidRange, options: CidPoolOptions = {}): CidPool {
	const size = cidRangeSize(range);
	const levels: Uint32Array[] = [];
	let bits = size;
	do {
		const level = new Uint32Array(Math.ceil(bits / 32));
		const fullWords = bits >>> 5;
		level.fill(0xFF_FF_FF_FF, 0, fullWords);
		if (bits & 31) {
			level[fullWords] = (2 ** (bits & 31)) - 1;
		}

		levels.push(level);
		bits = level.length;
	} while (bits > 1);

	const {lastAllocated} = options;
	const pool: CidPool = {
		range: {first: range.first, last: range.last},
		lastAllocated: lastAllocated !== undefined && isCidInRange({range}, lastAllocated) ? lastAllocated : undefined,
		held: 0,
		levels,
	};
	for (const cid of options.held ?? []) {
		holdCid(pool, cid);
	}

	return pool;
}

/** Whether `cid` lies in the pool's range. */
export function isCidInRange(pool: Pick<CidPool, 'range'>, cid: number): boolean {
	return Number.isInteger(cid) && cid >= pool.range.first && cid <= pool.range.last;
}

/** Whether `cid` is held (not free). CIDs outside the range are never held. */
export function isCidHeld(pool: CidPool, cid: number): boolean {
	if (!isCidInRange(pool, cid)) {
		return false;
	}

	const offset = cid - pool.range.first;
	return ((pool.levels[0]![offset >>> 5]! >>> (offset & 31)) & 1) === 0;
}

/** Whether at least one CID is free. */
export function hasFreeCid(pool: CidPool): boolean {
	return pool.held < cidRangeSize(pool.range);
}

/**
 * The CID `allocateCid` would return: the first free one after the last allocated, wrapping to the
 * bottom of the range; `undefined` when every CID is held.
 */
export function nextFreeCid(pool: CidPool): number | undefined {
	const start = pool.lastAllocated === undefined ? 0 : pool.lastAllocated - pool.range.first + 1;
	let offset = findFreeFrom(pool.levels, start);
	if (offset < 0 && start > 0) {
		offset = findFreeFrom(pool.levels, 0);
	}

	return offset < 0 ? undefined : pool.range.first + offset;
}

/** Holds and returns the next free CID; throws `NoAvailableCidError`, changing nothing, when none is. */
export function allocateCid(pool: CidPool): number {
	const cid = nextFreeCid(pool);
	if (cid === undefined) {
		throw new NoAvailableCidError(pool.range);
	}

	holdCid(pool, cid);
	pool.lastAllocated = cid;
	return cid;
}

/** Marks `cid` held; returns false when it was held already or lies outside the range. */
export function holdCid(pool: CidPool, cid: number): boolean {
	if (!isCidInRange(pool, cid) || isCidHeld(pool, cid)) {
		return false;
	}

	let index = cid - pool.range.first;
	for (const level of pool.levels) {
		const word = index >>> 5;
		const after = (level[word]! & ~(1 << (index & 31))) >>> 0;
		level[word] = after;
		if (after !== 0) {
			break;
		}

		index = word;
	}

	pool.held++;
	return true;
}

/** Frees `cid`; returns false when it was not held (or lies outside the range). */
export function releaseCid(pool: CidPool, cid: number): boolean {
	if (!isCidHeld(pool, cid)) {
		return false;
	}

	let index = cid - pool.range.first;
	for (const level of pool.levels) {
		const word = index >>> 5;
		const before = level[word]!;
		level[word] = (before | (1 << (index & 31))) >>> 0;
		if (before !== 0) {
			break;
		}

		index = word;
	}

	pool.held--;
	return true;
}

/** A summary for logs and the inspector (the bitmap itself means nothing there). */
export function describeCidPool(pool: CidPool): {first: number; last: number; held: number; lastAllocated: number | undefined} {
	return {first: pool.range.first, last: pool.range.last, held: pool.held, lastAllocated: pool.lastAllocated};
}

/** The offset of the lowest set bit of a non-zero word. */
function lowestSetBit(word: number): number {
	return 31 - Math.clz32(word & -word);
}

/** The lowest free offset at or after `from`, or -1: climbs while words are empty, then descends. */
function findFreeFrom(levels: Uint32Array[], from: number): number {
	let level = 0;
	let index = from;
	for (; level < levels.length; level++) {
		const bits = levels[level]!;
		const word = index >>> 5;
		if (word >= bits.length) {
			return -1;
		}

		const masked = bits[word]! & (-1 << (index & 31));
		if (masked !== 0) {
			index = (word << 5) | lowestSetBit(masked);
			break;
		}

		index = word + 1;
	}

	if (level === levels.length) {
		return -1;
	}

	while (level > 0) {
		level--;
		index = (index << 5) | lowestSetBit(levels[level]![index]!);
	}

	return index;
}
