import {opendirSync} from 'node:fs';
import {dirname, isAbsolute, join, resolve} from 'node:path';
import {StateDirError} from '../../errors.js';
import {ensurePrivateDir} from './private-dir.js';
import {isGuestCid} from '../cids/range.js';
import {isDraftName, readSmallFile, readSmallFileAsync, replaceFile, tryWrite, unlinkIfPresent, unlinkQuietly, type StateDirWrite} from './files.js';

/** The folder of the state directory that holds one record per running VM. */
export const VM_RECORDS_DIR = 'vms';

/** Linux's `PID_MAX_LIMIT`: no PID is larger. */
const MAX_PID = 4_194_304;

/** More entries in `vms/` than any supervisor runs VMs: the listing stops there rather than run long. */
const MAX_VMS_ENTRIES = 100_000;

/** Linux's `PATH_MAX`. */
const MAX_PATH_BYTES = 4096;

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

/** A record file found in `vms/`, not yet read: its name alone says which CID it holds. */
export interface StaleVmEntry {
	cid: number;
	/** The record's file name inside `vms/`. */
	file: string;
}

/** A record's file name. */
export function recordFileName(cid: number): string {
	return `${cid}.json`;
}

/** The CID a record's file name holds, or `undefined` for any other name. */
export function cidOfRecordFile(name: string): number | undefined {
	const match = /^([1-9]\d{0,9})\.json$/.exec(name);
	const cid = match === null ? undefined : Number(match[1]);
	return isGuestCid(cid) ? cid : undefined;
}

/** `fields` as a record vmwarden could have written, or why it cannot be one. */
export function checkVmRecord(fields: Record<string, unknown>): VmRecord | string {
	const {cid, pid, startTime, tempDir, supervisorPid} = fields;
	const extra = Object.keys(fields).filter(key => !['cid', 'pid', 'startTime', 'tempDir', 'supervisorPid'].includes(key));
	if (extra.length > 0) {
		return `has unknown fields: ${extra.slice(0, 3).join(', ')}`;
	}

	if (!isGuestCid(cid)) {
		return 'cid is not a guest CID';
	}

	if (!isPid(pid)) {
		return `pid is not a PID (an integer from 1 to ${MAX_PID})`;
	}

	if (!isPid(supervisorPid)) {
		return `supervisorPid is not a PID (an integer from 1 to ${MAX_PID})`;
	}

	if (typeof startTime !== 'string' || !/^\d{1,20}$/.test(startTime)) {
		return 'startTime is not a decimal start time';
	}

	if (typeof tempDir !== 'string' || Buffer.byteLength(tempDir) > MAX_PATH_BYTES || tempDir.includes('\0') || !isAbsolute(tempDir) || resolve(tempDir) !== tempDir || tempDir === '/') {
		return 'tempDir is not a normalized absolute path below /';
	}

	return {cid, pid, startTime, tempDir, supervisorPid};
}

function isPid(value: unknown): value is number {
	return typeof value === 'number' && Number.isSafeInteger(value) && value > 0 && value <= MAX_PID;
}

/** What reading one record gave. */
export type VmRecordRead = {ok: true; record: VmRecord} | {ok: false; reason: string};

/** Parses a record's text, hostile input: every field is checked, and the CID must match its file's. */
export function parseVmRecord(text: string, expectedCid?: number): VmRecordRead {
	let value: unknown;
	try {
		value = JSON.parse(text);
	} catch {
		return {ok: false, reason: 'is not JSON'};
	}

	if (typeof value !== 'object' || value === null || Array.isArray(value)) {
		return {ok: false, reason: 'is not a JSON object'};
	}

	const record = checkVmRecord(value as Record<string, unknown>);
	if (typeof record === 'string') {
		return {ok: false, reason: record};
	}

	if (expectedCid !== undefined && record.cid !== expectedCid) {
		return {ok: false, reason: `cid ${record.cid} is not the CID of its file name`};
	}

	return {ok: true, record};
}

/**
 * Writes (or replaces) the record of a running VM, through a draft and a rename. Never throws: a
 * failure (disk full, read-only file system, a bad record) comes back in the result.
 */
export function writeVmRecord(stateDir: string, record: VmRecord): StateDirWrite {
	const path = join(stateDir, VM_RECORDS_DIR, recordFileName(record.cid));
	return tryWrite(() => {
		const checked = checkVmRecord({...record});
		if (typeof checked === 'string') {
			throw new Error(`refusing to write an invalid record: ${checked}`);
		}

		const text = `${JSON.stringify(record)}\n`;
		try {
			replaceFile(path, text);
		} catch (error) {
			if (!(error instanceof StateDirError && (error.cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT')) {
				throw error;
			}

			// No `vms/` yet (a state directory not opened by a supervisor): made private, then again.
			ensurePrivateDir(dirname(path), 'stateDir');
			replaceFile(path, text);
		}
	}, path);
}

/** Removes the record of a VM that is dead and cleaned up. A missing record is fine; never throws. */
export function removeVmRecord(stateDir: string, cid: number): StateDirWrite {
	const path = join(stateDir, VM_RECORDS_DIR, recordFileName(cid));
	return tryWrite(() => {
		unlinkIfPresent(path);
	}, path);
}

/** What `listStaleVms` found in `vms/`. */
export interface StaleVmListing {
	/** Record files, in CID order: their CIDs stay held until each is reaped. */
	entries: StaleVmEntry[];
	/** Names that are neither records nor drafts: left alone, for an operator to look at. */
	strays: string[];
}

/**
 * Lists the record files in `vms/` by name only, so that taking the state directory over stays
 * quick with thousands of records: they are read, asynchronously, by the reaper. Drafts a crashed
 * writer left are removed (a draft is never a record). Throws when `vms/` cannot be read.
 */
export function listStaleVms(stateDir: string): StaleVmListing {
	const folder = join(stateDir, VM_RECORDS_DIR);
	const entries: StaleVmEntry[] = [];
	const strays: string[] = [];
	const directory = opendirSync(folder);
	try {
		for (let entry = directory.readSync(); entry !== null; entry = directory.readSync()) {
			if (entries.length + strays.length >= MAX_VMS_ENTRIES) {
				throw new Error(`${folder} holds more than ${MAX_VMS_ENTRIES} entries`);
			}

			sortEntry(folder, entry.name, entries, strays);
		}
	} finally {
		directory.closeSync();
	}

	return {entries: entries.sort((a, b) => a.cid - b.cid), strays: strays.sort()};
}

/** Files a name of `vms/` as a record or a stray; a draft a crashed writer left is removed. */
function sortEntry(folder: string, name: string, entries: StaleVmEntry[], strays: string[]): void {
	const cid = cidOfRecordFile(name);
	if (cid !== undefined) {
		entries.push({cid, file: name});
	} else if (isDraftName(name)) {
		unlinkQuietly(join(folder, name));
	} else {
		strays.push(name);
	}
}

/** Reads one record file, bounded and without following links; never throws. */
export async function readStaleVm(stateDir: string, entry: StaleVmEntry): Promise<VmRecordRead> {
	const read = await readSmallFileAsync(join(stateDir, VM_RECORDS_DIR, entry.file));
	return read.ok ? parseVmRecord(read.text, entry.cid) : {ok: false, reason: read.reason};
}

/**
 * Reads every valid record, synchronously, in CID order. Records that cannot be read or are not
 * valid are skipped and left in place (they are hostile or damaged: nothing they name is touched).
 * Never throws.
 */
export function readVmRecords(stateDir: string): VmRecord[] {
	let listing: StaleVmListing;
	try {
		listing = listStaleVms(stateDir);
	} catch {
		return [];
	}

	const records: VmRecord[] = [];
	for (const entry of listing.entries) {
		const read = readSmallFile(join(stateDir, VM_RECORDS_DIR, entry.file));
		const parsed = read.ok ? parseVmRecord(read.text, entry.cid) : undefined;
		if (parsed?.ok === true) {
			records.push(parsed.record);
		}
	}

	return records;
}
