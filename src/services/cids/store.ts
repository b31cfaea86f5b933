import {closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync} from 'node:fs';
import {join} from 'node:path';

/** The file in the state directory that holds the last allocated CID, as decimal text. */
export const LAST_CID_FILE = 'last-cid';

/**
 * Replaces `path` with `data` so that a reader sees the old content or the new one, never a part:
 * writes a temporary file beside it, flushes it, then renames it over `path` (atomic within a file
 * system).
 */
export function writeFileAtomic(path: string, data: string): void {
	const temporary = `${path}.${process.pid}.tmp`;
	try {
		const fd = openSync(temporary, 'w', 0o600);
		try {
			writeSync(fd, data);
			fsyncSync(fd);
		} finally {
			closeSync(fd);
		}

		renameSync(temporary, path);
	} catch (error) {
		rmSync(temporary, {force: true});
		throw error;
	}
}

/** Creates the state directory (0700) when missing. */
export function ensureStateDir(stateDir: string): void {
	mkdirSync(stateDir, {recursive: true, mode: 0o700});
}

/**
 * The last CID a supervisor allocated with this state directory, or `undefined` when none was
 * (or the file is unreadable: a new supervisor then starts at the bottom of its range).
 */
export function readLastCid(stateDir: string): number | undefined {
	let text: string;
	try {
		text = readFileSync(join(stateDir, LAST_CID_FILE), 'utf8');
	} catch {
		return undefined;
	}

	const cid = Number(text.trim());
	return /^\d+$/.test(text.trim()) && Number.isSafeInteger(cid) ? cid : undefined;
}

/** Persists the last allocated CID, atomically. */
export function writeLastCid(stateDir: string, cid: number): void {
	writeFileAtomic(join(stateDir, LAST_CID_FILE), `${cid}\n`);
}
