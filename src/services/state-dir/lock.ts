import {randomBytes} from 'node:crypto';
import {linkSync, lstatSync, readdirSync} from 'node:fs';
import {join} from 'node:path';
import {InvalidConfigError, StateDirError} from '../../errors.js';
import {isDraftName, readSmallFile, unlinkIfPresent, unlinkQuietly, writeDraft} from './files.js';
import {isProcessRunning, processIdentity, type ProcessIdentity} from './process-identity.js';

/** The file that says which supervisor process owns the state directory. */
export const LOCK_FILE = 'supervisor.lock';

/** What a lock file holds: its owner, and a token naming this one lock among all the owner's. */
export interface LockOwner extends ProcessIdentity {
	token: string;
}

/** How often `claimStateDir` looks again after the lock changed under it. */
const MAX_ATTEMPTS = 16;

/** A takeover marker whose taker died is itself taken over: this deep, at most. */
const MAX_TAKEOVER_DEPTH = 3;

/** A crashed contender's draft or marker older than this is swept by the next owner. */
const LEFTOVER_AGE_MS = 60_000;

/**
 * Makes this process the owner of the state directory, so that two live supervisors never reap
 * each other's VMs. Returns the function that gives the directory up (idempotent).
 *
 * The lock is taken with `link(2)` of a fully written draft: it fails when the lock exists, and a
 * reader never sees half a lock. A lock whose owner (PID and start time) no longer runs is stale.
 * Removing it is the race: two contenders may both see it stale, and the slower must not remove
 * the lock the faster has just made. So only the contender that creates the marker
 * `supervisor.lock.takeover-<token of the stale lock>` (again `link(2)`, exactly one wins) may
 * remove it, and only after reading that the lock still holds that token: nobody else can remove
 * that lock meanwhile (its owner is dead, its marker is ours), so the check cannot go stale. A
 * marker whose taker died is taken over the same way, one level deeper.
 *
 * Refusals are `InvalidConfigError`s naming `stateDir`. Owners are compared within one PID
 * namespace: supervisors in different PID namespaces must not share a state directory.
 */
export function claimStateDir(stateDir: string): () => void {
	const identity = processIdentity(process.pid);
	if (identity === undefined) {
		throw new InvalidConfigError('stateDir', 'cannot read this process\'s start time from /proc');
	}

	const self: LockOwner = {...identity, token: randomBytes(16).toString('hex')};
	const path = join(stateDir, LOCK_FILE);
	for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
		if (createExclusive(path, self)) {
			sweepLeftovers(stateDir);
			return releaser(path, self);
		}

		const holder = readLock(path);
		if (holder === 'missing') {
			continue;
		}

		if (isProcessRunning(holder)) {
			throw new InvalidConfigError('stateDir', holder.pid === process.pid
				? `${stateDir} is in use by another supervisor of this process (${holder.pid}): shut it down first, or give each supervisor its own stateDir`
				: `${stateDir} is in use by the supervisor of process ${holder.pid}`);
		}

		removeStale(path, holder, self, 0);
	}

	throw new InvalidConfigError('stateDir', `${stateDir}: the lock kept changing under ${MAX_ATTEMPTS} attempts to take it`);
}

function releaser(path: string, self: LockOwner): () => void {
	let released = false;
	return () => {
		if (released) {
			return;
		}

		released = true;
		// Nobody can replace our lock while we live, so the check cannot go stale before the unlink.
		const holder = readLockQuietly(path);
		if (holder !== undefined && holder.token === self.token) {
			unlinkQuietly(path);
		}
	};
}

/** Creates `path` holding `owner` if it does not exist; false if it does. */
function createExclusive(path: string, owner: LockOwner): boolean {
	const draft = wrapStateDirError(() => writeDraft(path, `${JSON.stringify(owner)}\n`));
	try {
		linkSync(draft, path);
		return true;
	} catch (error) {
		if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
			return false;
		}

		throw new InvalidConfigError('stateDir', `cannot create ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, {cause: error});
	} finally {
		unlinkQuietly(draft);
	}
}

/**
 * Removes the lock at `path` if it still is the stale lock of `stale`; see `claimStateDir`. Returns
 * when the caller should look at the lock again.
 */
function removeStale(path: string, stale: LockOwner, self: LockOwner, depth: number): void {
	if (depth > MAX_TAKEOVER_DEPTH) {
		throw new InvalidConfigError('stateDir', `${path}: more than ${MAX_TAKEOVER_DEPTH} takeovers of it died half-way; remove ${path}.takeover-* if no supervisor runs`);
	}

	const marker = `${path}.takeover-${stale.token}`;
	for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
		if (createExclusive(marker, {...self, token: randomBytes(16).toString('hex')})) {
			try {
				const current = readLockQuietly(path);
				if (current !== undefined && current.token === stale.token) {
					wrapStateDirError(() => {
						unlinkIfPresent(path);
					});
				}
			} finally {
				unlinkQuietly(marker);
			}

			return;
		}

		const taker = readLock(marker);
		if (taker === 'missing') {
			// The other taker is done: whatever it made of the lock, the caller reads it again.
			return;
		}

		if (isProcessRunning(taker)) {
			// The other taker is between two system calls: give it a moment, then read again.
			pause(1);
			return;
		}

		removeStale(marker, taker, self, depth + 1);
	}
}

/** The owner a lock file names; `missing` when it is gone; refuses (throws) a file that is no lock. */
function readLock(path: string): LockOwner | 'missing' {
	const read = readSmallFile(path);
	if (!read.ok) {
		if (read.missing) {
			return 'missing';
		}

		throw new InvalidConfigError('stateDir', `${path} ${read.reason}: remove it if no supervisor runs`);
	}

	const owner = parseLockOwner(read.text);
	if (owner === undefined) {
		throw new InvalidConfigError('stateDir', `${path} is not a vmwarden lock: remove it if no supervisor runs`);
	}

	return owner;
}

function readLockQuietly(path: string): LockOwner | undefined {
	const read = readSmallFile(path);
	return read.ok ? parseLockOwner(read.text) : undefined;
}

/**
 * Parses a lock file's text; `undefined` for anything else. A lock from before tokens existed
 * (PID and start time only) gets them as its token: they name one process for the machine's life.
 */
export function parseLockOwner(text: string): LockOwner | undefined {
	let value: unknown;
	try {
		value = JSON.parse(text);
	} catch {
		return undefined;
	}

	if (typeof value !== 'object' || value === null || Array.isArray(value)) {
		return undefined;
	}

	const {pid, startTime, token} = value as Record<string, unknown>;
	if (typeof pid !== 'number' || !Number.isSafeInteger(pid) || pid <= 0 || typeof startTime !== 'string' || !/^\d{1,20}$/.test(startTime)) {
		return undefined;
	}

	if (token === undefined) {
		return {pid, startTime, token: `${pid}-${startTime}`};
	}

	return typeof token === 'string' && /^[0-9a-f]{32}$/.test(token) ? {pid, startTime, token} : undefined;
}

/** Removes what a contender that crashed between two system calls left: old drafts and markers. */
function sweepLeftovers(stateDir: string): void {
	let names: string[];
	try {
		names = readdirSync(stateDir);
	} catch {
		return;
	}

	const now = Date.now();
	for (const name of names) {
		if ((name.startsWith(`${LOCK_FILE}.takeover-`) || (isDraftName(name) && name.startsWith(`.${LOCK_FILE}`)))) {
			try {
				if (now - lstatSync(join(stateDir, name)).mtimeMs > LEFTOVER_AGE_MS) {
					unlinkQuietly(join(stateDir, name));
				}
			} catch {
				// Gone since readdir (another process swept it), or unreadable: leave it to the next sweep.
			}
		}
	}
}

function wrapStateDirError<T>(operation: () => T): T {
	try {
		return operation();
	} catch (error) {
		if (error instanceof StateDirError) {
			throw new InvalidConfigError('stateDir', `${error.path}: ${error.reason}`, {cause: error});
		}

		throw error;
	}
}

/** A synchronous pause of `ms` milliseconds: only ever a few, only while contending for the lock. */
function pause(ms: number): void {
	Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
