import {linkSync, mkdirSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync} from 'node:fs';
import {rm} from 'node:fs/promises';
import {dirname, isAbsolute, join, resolve} from 'node:path';
import {InvalidConfigError} from '../../errors.js';
import {writeFileAtomic} from '../cids/store.js';
import {killProcess, isProcessRunning, processIdentity, waitForProcessExit, type ProcessIdentity} from './process-identity.js';

/** The folder of the state directory that holds one record per running VM. */
export const VM_RECORDS_DIR = 'vms';

/** The file that says which supervisor process owns the state directory. */
export const LOCK_FILE = 'supervisor.lock';

/**
 * What a supervisor writes to its state directory while a VM runs, so that the next supervisor can
 * find the VM if this one dies without stopping it.
 */
export interface VmRecord {
	cid: number;
	/** The VMM's PID. */
	pid: number;
	/** The VMM's start time (`/proc/PID/stat` field 22), so a reused PID is never taken for it. */
	startTime: string;
	/** The VM's private temporary directory. */
	tempDir: string;
	/** The supervisor's own PID, for people reading the file. */
	supervisorPid: number;
}

/** What became of a previous instance's VM. */
export type StaleVmOutcome =
	/** It still ran: it was killed. */
	| 'killed'
	/** It was no longer running. */
	| 'gone'
	/** Its PID now belongs to an unrelated process, which was left alone. */
	| 'pid-reused'
	/** It was sent SIGKILL but still ran after the wait (uninterruptible sleep); its CID is freed anyway. */
	| 'kill-timed-out';

/** The report of one reaped VM. */
export interface ReapedVm {
	cid: number;
	pid: number;
	tempDir: string;
	outcome: StaleVmOutcome;
	/** Whether its temporary directory was removed (or was already gone). */
	tempDirRemoved: boolean;
}

/** Writes (or replaces) the record of a running VM. */
export function writeVmRecord(stateDir: string, record: VmRecord): void {
	const folder = join(stateDir, VM_RECORDS_DIR);
	mkdirSync(folder, {recursive: true, mode: 0o700});
	writeFileAtomic(join(folder, `${record.cid}.json`), `${JSON.stringify(record)}\n`);
}

/** Removes the record of a VM that is dead and cleaned up. Missing records are fine. */
export function removeVmRecord(stateDir: string, cid: number): void {
	rmSync(join(stateDir, VM_RECORDS_DIR, `${cid}.json`), {force: true});
}

/**
 * Reads every record in the state directory. A record that cannot be parsed names no process that
 * could safely be killed: it is removed and skipped.
 */
export function readVmRecords(stateDir: string): VmRecord[] {
	const folder = join(stateDir, VM_RECORDS_DIR);
	let names: string[];
	try {
		names = readdirSync(folder);
	} catch {
		return [];
	}

	const records: VmRecord[] = [];
	for (const name of names) {
		const path = join(folder, name);
		if (!name.endsWith('.json')) {
			// A temporary file left by a write that never reached its rename.
			rmSync(path, {force: true});
			continue;
		}

		const record = parseVmRecord(path);
		if (record === undefined) {
			rmSync(path, {force: true});
		} else {
			records.push(record);
		}
	}

	return records.sort((a, b) => a.cid - b.cid);
}

function parseVmRecord(path: string): VmRecord | undefined {
	let value: unknown;
	try {
		value = JSON.parse(readFileSync(path, 'utf8'));
	} catch {
		return undefined;
	}

	if (typeof value !== 'object' || value === null) {
		return undefined;
	}

	const {cid, pid, startTime, tempDir, supervisorPid} = value as Record<string, unknown>;
	if (!Number.isSafeInteger(cid) || !Number.isSafeInteger(pid) || (pid as number) <= 0 || typeof startTime !== 'string' || !/^\d+$/.test(startTime) || typeof tempDir !== 'string') {
		return undefined;
	}

	return {cid: cid as number, pid: pid as number, startTime, tempDir, supervisorPid: Number(supervisorPid)};
}

/**
 * Kills a previous instance's VM if it still runs (and only if its PID still names the same
 * process), removes its temporary directory and its record.
 */
export async function reapStaleVm(stateDir: string, record: VmRecord, {killTimeoutMs = 5000}: {killTimeoutMs?: number} = {}): Promise<ReapedVm> {
	const identity: ProcessIdentity = {pid: record.pid, startTime: record.startTime};
	const killed = killProcess(identity, 'SIGKILL');
	let outcome: StaleVmOutcome = killed === 'signalled' ? 'killed' : killed;
	if (killed === 'signalled' && !(await waitForProcessExit(identity, {timeoutMs: killTimeoutMs}))) {
		outcome = 'kill-timed-out';
	}

	const tempDirRemoved = await removeStaleTempDir(stateDir, record.tempDir);
	removeVmRecord(stateDir, record.cid);
	return {cid: record.cid, pid: record.pid, tempDir: record.tempDir, outcome, tempDirRemoved};
}

/** Reaps every record in parallel. */
export async function reapStaleVms(stateDir: string, records: readonly VmRecord[], options: {killTimeoutMs?: number} = {}): Promise<ReapedVm[]> {
	return Promise.all(records.map(async record => reapStaleVm(stateDir, record, options)));
}

/**
 * Removes a temporary directory named by a record. The record comes from our own 0700 state
 * directory, but a path that could be a system folder is still never removed.
 */
async function removeStaleTempDir(stateDir: string, tempDir: string): Promise<boolean> {
	const path = resolve(tempDir);
	if (!isAbsolute(tempDir) || dirname(path) === path || dirname(dirname(path)) === dirname(path) || path === resolve(stateDir)) {
		return false;
	}

	try {
		await rm(path, {recursive: true, force: true});
		return true;
	} catch {
		return false;
	}
}

/**
 * Makes this process the owner of the state directory, so that two live supervisors never reap
 * each other's VMs. A lock left by a dead process (same PID and start time no longer running) is
 * taken over. Returns the function that gives the directory up.
 */
export function claimStateDir(stateDir: string): () => void {
	const path = join(stateDir, LOCK_FILE);
	const self = processIdentity(process.pid);
	if (self === undefined) {
		throw new InvalidConfigError('stateDir', 'cannot read this process\'s start time from /proc');
	}

	// The lock is written whole under another name, then hard-linked into place: link(2) fails if
	// the lock exists, and a reader never sees it half written.
	const draft = `${path}.${process.pid}.tmp`;
	for (let attempt = 0; ; attempt++) {
		try {
			writeFileSync(draft, `${JSON.stringify(self)}\n`, {mode: 0o600});
			linkSync(draft, path);
			break;
		} catch (error) {
			if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 2) {
				throw new InvalidConfigError('stateDir', `cannot take ${path}: ${(error as Error).message}`);
			}

			const owner = readLockOwner(path);
			if (owner !== undefined && isProcessRunning(owner)) {
				throw new InvalidConfigError('stateDir', `in use by the supervisor of process ${owner.pid}`);
			}

			rmSync(path, {force: true});
		} finally {
			rmSync(draft, {force: true});
		}
	}

	let released = false;
	return () => {
		if (released) {
			return;
		}

		released = true;
		const owner = readLockOwner(path);
		if (owner?.pid === self.pid && owner.startTime === self.startTime) {
			try {
				unlinkSync(path);
			} catch {}
		}
	};
}

function readLockOwner(path: string): ProcessIdentity | undefined {
	try {
		const {pid, startTime} = JSON.parse(readFileSync(path, 'utf8')) as Partial<ProcessIdentity>;
		return typeof pid === 'number' && typeof startTime === 'string' ? {pid, startTime} : undefined;
	} catch {
		return undefined;
	}
}
