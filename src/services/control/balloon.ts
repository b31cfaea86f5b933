import {InvalidConfigError, VmControlError} from '../../errors.js';

/**
 * The guest's memory statistics as its virtio-balloon driver last reported them: crosvm's
 * `BalloonStats` (common/balloon_control/src/lib.rs at f1e797a68), each field absent when the guest
 * did not report it. Memory fields are bytes, the others counts.
 */
export interface BalloonGuestStats {
	swapIn?: number;
	swapOut?: number;
	majorFaults?: number;
	minorFaults?: number;
	freeMemory?: number;
	totalMemory?: number;
	availableMemory?: number;
	diskCaches?: number;
	hugetlbAllocations?: number;
	hugetlbFailures?: number;
	sharedMemory?: number;
	unevictableMemory?: number;
}

/** What `vm.balloonStats()` returns. */
export interface BalloonStats {
	/** The balloon's size now, in bytes: guest memory the host has taken back. */
	actualBytes: number;
	/** Empty for QEMU without a stats polling interval. */
	stats: BalloonGuestStats;
}

/** crosvm's serde field names, and ours. */
const STAT_FIELDS: ReadonlyArray<[string, keyof BalloonGuestStats]> = [
	['swap_in', 'swapIn'],
	['swap_out', 'swapOut'],
	['major_faults', 'majorFaults'],
	['minor_faults', 'minorFaults'],
	['free_memory', 'freeMemory'],
	['total_memory', 'totalMemory'],
	['available_memory', 'availableMemory'],
	['disk_caches', 'diskCaches'],
	['hugetlb_allocations', 'hugetlbAllocations'],
	['hugetlb_failures', 'hugetlbFailures'],
	['shared_memory', 'sharedMemory'],
	['unevictable_memory', 'unevictableMemory'],
];

/** The most `balloon_stats` output vmwarden reads: crosvm's pretty JSON is well under 1 KiB. */
export const MAX_BALLOON_STATS_BYTES = 16 * 1024;

/** Whole bytes from 0 to 2^53 - 1: crosvm's u64 beyond that cannot be a memory size of this host. */
export function isByteCount(value: unknown): value is number {
	return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function isRecord(value: unknown): value is Record<string, unknown> {
	return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function refuse(reason: string): never {
	throw new VmControlError('balloonStats', `crosvm balloon_stats answered ${reason}`);
}

/**
 * Reads what `crosvm balloon_stats SOCKET` prints: serde_json's pretty form of
 * `VmResponse::BalloonStats {stats, balloon_actual}` (src/main.rs and vm_control/src/lib.rs at
 * f1e797a68), `{"BalloonStats": {"stats": {"swap_in": null, ...}, "balloon_actual": 0}}`. The text
 * comes from another process: bounded, parsed, and every number checked; unknown stats are ignored.
 */
export function parseCrosvmBalloonStats(text: string): BalloonStats {
	if (Buffer.byteLength(text) > MAX_BALLOON_STATS_BYTES) {
		refuse(`more than ${MAX_BALLOON_STATS_BYTES} bytes`);
	}

	let parsed: unknown;
	try {
		parsed = JSON.parse(text);
	} catch {
		refuse('something that is not JSON');
	}

	const response = isRecord(parsed) ? parsed['BalloonStats'] : undefined;
	if (!isRecord(response) || !isRecord(response['stats'])) {
		refuse('without a BalloonStats response');
	}

	const actual = response['balloon_actual'];
	if (!isByteCount(actual)) {
		refuse(`a balloon_actual that is not a byte count: ${JSON.stringify(actual) ?? 'none'}`);
	}

	const raw = response['stats'];
	const stats: BalloonGuestStats = {};
	for (const [from, to] of STAT_FIELDS) {
		const value = raw[from];
		if (value === null || value === undefined) {
			continue;
		}

		if (!isByteCount(value)) {
			refuse(`a ${from} that is not a count: ${JSON.stringify(value) ?? 'none'}`);
		}

		stats[to] = value;
	}

	return {actualBytes: actual, stats};
}

/** A balloon size from the caller: whole bytes, 0 to 2^53 - 1 (`InvalidConfigError` otherwise). */
export function checkBalloonBytes(bytes: unknown): number {
	if (!isByteCount(bytes)) {
		throw new InvalidConfigError('bytes', 'must be a whole number of bytes from 0 to 2^53 - 1');
	}

	return bytes;
}
