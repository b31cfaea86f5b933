import {InvalidConfigError} from '../../errors.js';
import {readLastCidFile} from '../cids/store.js';
import {ensureStateDir} from './directory.js';
import {claimStateDir} from './lock.js';
import {listStaleVms, type StaleVmEntry} from './records.js';

/** A state directory this process owns, and what the previous owner left in it. */
export interface OpenedStateDir {
	/** The last CID the previous owner allocated; `undefined` when none (or its file is damaged). */
	lastAllocatedCid: number | undefined;
	/** Why the last CID file was ignored, when it was. */
	lastCidProblem: string | undefined;
	/** The records of the previous owner's VMs, by name: hold their CIDs, then `reapStateDir` them. */
	staleVms: StaleVmEntry[];
	/** Names in `vms/` that are no record: left alone, worth a log line. */
	strays: string[];
	/** Gives the directory up (idempotent). */
	release(): void;
}

/**
 * Opens a state directory for one supervisor: makes sure it is private (`ensureStateDir`), takes
 * its lock (`claimStateDir`), reads the last CID and lists the stale records. Anything that fails
 * after the lock is taken gives the lock back before the error leaves. Throws `InvalidConfigError`
 * naming `stateDir` with the reason; on success the caller owns `release`.
 */
export function openStateDir(stateDir: string): OpenedStateDir {
	ensureStateDir(stateDir);
	return whileLocked(stateDir, release => {
		const lastCid = readLastCidFile(stateDir);
		let listing;
		try {
			listing = listStaleVms(stateDir);
		} catch (error) {
			throw new InvalidConfigError('stateDir', `cannot list ${stateDir}/vms: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, {cause: error});
		}

		return {
			lastAllocatedCid: lastCid.ok ? lastCid.cid : undefined,
			lastCidProblem: lastCid.ok ? undefined : lastCid.reason,
			staleVms: listing.entries,
			strays: listing.strays,
			release,
		};
	});
}

/**
 * Takes the state directory's lock and runs `read` with the function that gives it back. If `read`
 * throws, the lock is given back before the error leaves.
 */
export function whileLocked<T>(stateDir: string, read: (release: () => void) => T): T {
	const release = claimStateDir(stateDir);
	try {
		return read(release);
	} catch (error) {
		release();
		throw error;
	}
}
