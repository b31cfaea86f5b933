import {join} from 'node:path';
import {readSmallFile, replaceFile, tryWrite, type StateDirWrite} from '../state-dir/files.js';
import {isGuestCid} from './range.js';

/** The file in the state directory that holds the last allocated CID, as decimal text. */
export const LAST_CID_FILE = 'last-cid';

/** What `readLastCid` found. */
export type LastCidRead =
	| {ok: true; cid: number | undefined}
	| {ok: false; reason: string};

/**
 * Reads the last CID file: bounded, never through a symbolic link, and checked (decimal text of a
 * guest CID). A missing file is `{ok: true, cid: undefined}`; anything wrong is a reason. Never throws.
 */
export function readLastCidFile(stateDir: string): LastCidRead {
	const read = readSmallFile(join(stateDir, LAST_CID_FILE), 64);
	if (!read.ok) {
		return read.missing ? {ok: true, cid: undefined} : {ok: false, reason: `${LAST_CID_FILE} ${read.reason}`};
	}

	const text = read.text.trim();
	const cid = /^[1-9]\d{0,9}$/.test(text) ? Number(text) : undefined;
	return isGuestCid(cid) ? {ok: true, cid} : {ok: false, reason: `${LAST_CID_FILE} does not hold a guest CID`};
}

/**
 * The last CID a supervisor allocated with this state directory, or `undefined` when none was
 * (or the file is unreadable or damaged: a new supervisor then starts at the bottom of its range).
 */
export function readLastCid(stateDir: string): number | undefined {
	const read = readLastCidFile(stateDir);
	return read.ok ? read.cid : undefined;
}

/**
 * Persists the last allocated CID through a draft and a rename (a reader sees the old CID or the
 * new one; a link planted at the name is replaced, never written through). Never throws: a failure
 * (disk full, read-only file system, permissions) comes back in the result, and only costs the
 * next supervisor its starting point.
 */
export function writeLastCid(stateDir: string, cid: number): StateDirWrite {
	const path = join(stateDir, LAST_CID_FILE);
	return tryWrite(() => {
		replaceFile(path, `${cid}\n`);
	}, path);
}
