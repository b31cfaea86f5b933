import {readdirSync, readFileSync} from 'node:fs';

/**
 * Descriptors a spawn needs besides what it inherits: a socket pair per piped stdio entry, libuv's
 * exec-error pipe, and a margin for what Node and the logger open meanwhile.
 */
const SPAWN_OVERHEAD = 8;

let softLimit: number | undefined;

/** How many checks may go by on one count of the open descriptors. */
const RECOUNT_EVERY = 64;

/** The last count of open descriptors, and how many checks went by on it. */
let lastCount: {open: number; since: number} | undefined;

/** RLIMIT_NOFILE's soft limit, read once from /proc/self/limits (Infinity when unknown or unlimited). */
function descriptorLimit(): number {
	if (softLimit === undefined) {
		try {
			const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find(entry => entry.startsWith('Max open files'));
			const value = Number(line?.slice('Max open files'.length).trim().split(/\s+/)[0]);
			softLimit = Number.isSafeInteger(value) && value > 0 ? value : Number.POSITIVE_INFINITY;
		} catch {
			softLimit = Number.POSITIVE_INFINITY;
		}
	}

	return softLimit;
}

/**
 * Why a spawn with `pipes` piped stdio entries would run out of descriptors, or undefined when there
 * is room. Checked before spawning because Node's `spawn` does not throw on EMFILE: it returns a
 * child without stdio and emits 'error' on it a tick later, and execa, failing on the missing stdio,
 * hands back a stand-in, so nobody listens to that 'error' and the host crashes (Node 20's
 * lib/internal/child_process.js, execa 9.6's lib/return/early-error.js).
 */
export function descriptorShortage(pipes: number): string | undefined {
	const limit = descriptorLimit();
	if (limit === Number.POSITIVE_INFINITY) {
		return undefined;
	}

	const needed = 2 * pipes + SPAWN_OVERHEAD;
	// Counting /proc/self/fd costs a readdir as long as the fleet is large: far from the limit, the
	// last count plus what every spawn since could have opened is proof enough, for a while.
	if (lastCount !== undefined && lastCount.since < RECOUNT_EVERY && lastCount.open + ((lastCount.since + 1) * needed) < limit / 2) {
		lastCount.since++;
		return undefined;
	}

	let open: number;
	try {
		open = readdirSync('/proc/self/fd').length;
	} catch {
		return undefined;
	}

	lastCount = {open, since: 0};
	return open + needed > limit ? `too many open files: ${open} of RLIMIT_NOFILE ${limit} are open and a spawn needs ${needed} more` : undefined;
}
