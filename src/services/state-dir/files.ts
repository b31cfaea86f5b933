import {randomBytes} from 'node:crypto';
import {closeSync, constants, fstatSync, fsyncSync, openSync, readSync, renameSync, unlinkSync, writeSync} from 'node:fs';
import {open} from 'node:fs/promises';
import {basename, dirname, join} from 'node:path';
import {StateDirError} from '../../errors.js';
import {effectiveUid} from './private-dir.js';

/**
 * Opening for reading never follows a symbolic link and never waits: a FIFO planted at a record's
 * name would otherwise block `open(2)`, and with it the event loop, for good.
 */
const READ_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/** A draft is a new file with a random name: nothing planted beforehand can be written through. */
const DRAFT_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/** Every file vmwarden reads back from the state directory is small; anything larger is refused unread. */
export const MAX_STATE_FILE_BYTES = 4096;

const utf8 = new TextDecoder('utf-8', {fatal: true});

/** What reading a small state file gave. */
export type SmallFileRead =
	| {ok: true; text: string}
	| {ok: false; missing: boolean; reason: string};

function describeOpenError(error: unknown): {ok: false; missing: boolean; reason: string} {
	const code = (error as NodeJS.ErrnoException).code;
	if (code === 'ENOENT') {
		return {ok: false, missing: true, reason: 'does not exist'};
	}

	// O_NOFOLLOW gives ELOOP for a symbolic link.
	return {ok: false, missing: false, reason: code === 'ELOOP' ? 'is a symbolic link' : `cannot be opened: ${code ?? String(error)}`};
}

function checkOpened(stats: {isFile(): boolean; uid: number; size: number}, limit: number): string | undefined {
	const uid = effectiveUid();
	if (!stats.isFile()) {
		return 'is not a regular file';
	}

	if (uid !== undefined && stats.uid !== uid) {
		return `is owned by uid ${stats.uid}, not ${uid}`;
	}

	return stats.size > limit ? `is larger than ${limit} bytes` : undefined;
}

function decode(bytes: Uint8Array, limit: number): SmallFileRead {
	if (bytes.length > limit) {
		return {ok: false, missing: false, reason: `is larger than ${limit} bytes`};
	}

	try {
		return {ok: true, text: utf8.decode(bytes)};
	} catch {
		return {ok: false, missing: false, reason: 'is not UTF-8 text'};
	}
}

/**
 * Reads a small regular file of ours: never follows a symbolic link, never blocks on a FIFO, reads
 * at most `limit` bytes, and reports (never throws) what is wrong.
 */
export function readSmallFile(path: string, limit = MAX_STATE_FILE_BYTES): SmallFileRead {
	let fd: number;
	try {
		fd = openSync(path, READ_FLAGS);
	} catch (error) {
		return describeOpenError(error);
	}

	try {
		const problem = checkOpened(fstatSync(fd), limit);
		if (problem !== undefined) {
			return {ok: false, missing: false, reason: problem};
		}

		// One byte more than allowed tells a file that grew since fstat.
		const buffer = Buffer.alloc(limit + 1);
		let length = 0;
		for (let read = -1; read !== 0 && length < buffer.length;) {
			read = readSync(fd, buffer, length, buffer.length - length, null);
			length += read;
		}

		return decode(buffer.subarray(0, length), limit);
	} catch (error) {
		return {ok: false, missing: false, reason: `cannot be read: ${(error as NodeJS.ErrnoException).code ?? String(error)}`};
	} finally {
		closeSync(fd);
	}
}

/** `readSmallFile` without blocking the event loop, for the reaper's many records. */
export async function readSmallFileAsync(path: string, limit = MAX_STATE_FILE_BYTES): Promise<SmallFileRead> {
	let handle;
	try {
		handle = await open(path, READ_FLAGS);
	} catch (error) {
		return describeOpenError(error);
	}

	try {
		const problem = checkOpened(await handle.stat(), limit);
		if (problem !== undefined) {
			return {ok: false, missing: false, reason: problem};
		}

		const buffer = Buffer.alloc(limit + 1);
		let length = 0;
		for (let read = -1; read !== 0 && length < buffer.length;) {
			({bytesRead: read} = await handle.read(buffer, length, buffer.length - length, null));
			length += read;
		}

		return decode(buffer.subarray(0, length), limit);
	} catch (error) {
		return {ok: false, missing: false, reason: `cannot be read: ${(error as NodeJS.ErrnoException).code ?? String(error)}`};
	} finally {
		await handle.close();
	}
}

/** A draft's name: hidden, random, recognisable so that a crash's leftovers can be swept. */
export function draftName(name: string): string {
	return `.${name}.${randomBytes(8).toString('hex')}.tmp`;
}

/** Whether `name` is a draft `draftName` made. */
export function isDraftName(name: string): boolean {
	return /^\..+\.[0-9a-f]{16}\.tmp$/.test(name);
}

/**
 * Writes `data` to a new draft beside `path` (exclusive, never through a symbolic link) and
 * flushes it; returns the draft's path. Throws `StateDirError`; leaves nothing behind then.
 */
export function writeDraft(path: string, data: string): string {
	const draft = join(dirname(path), draftName(basename(path)));
	let fd: number;
	try {
		fd = openSync(draft, DRAFT_FLAGS, 0o600);
	} catch (error) {
		throw stateDirError(draft, 'cannot create', error);
	}

	try {
		try {
			const bytes = Buffer.from(data);
			for (let written = 0; written < bytes.length;) {
				written += writeSync(fd, bytes, written);
			}

			fsyncSync(fd);
		} finally {
			closeSync(fd);
		}
	} catch (error) {
		unlinkQuietly(draft);
		throw stateDirError(draft, 'cannot write', error);
	}

	return draft;
}

/**
 * Replaces `path` with `data` so that a reader sees the old content or the new one, never a part,
 * and so that a symbolic link planted at `path` is replaced, never written through: a draft, then
 * `rename(2)`. Throws `StateDirError` (disk full, read-only file system, permissions).
 */
export function replaceFile(path: string, data: string): void {
	const draft = writeDraft(path, data);
	try {
		renameSync(draft, path);
	} catch (error) {
		unlinkQuietly(draft);
		throw stateDirError(path, 'cannot replace', error);
	}
}

/** Removes a name (never what a link points at); a missing one is fine. Throws `StateDirError`. */
export function unlinkIfPresent(path: string): void {
	try {
		unlinkSync(path);
	} catch (error) {
		if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
			throw stateDirError(path, 'cannot remove', error);
		}
	}
}

export function unlinkQuietly(path: string): void {
	try {
		unlinkSync(path);
	} catch {
		// Cleanup only: a file already gone is fine, and any other error is not the caller's to handle.
	}
}

function stateDirError(path: string, what: string, error: unknown): StateDirError {
	const {code, message} = error as NodeJS.ErrnoException;
	return new StateDirError(path, `${what}: ${code ?? message}`, {cause: error});
}

/** The outcome of a write to the state directory: it never throws into the supervisor. */
export type StateDirWrite = {ok: true} | {ok: false; error: StateDirError};

/** Runs a write, turning its `StateDirError` into a result. */
export function tryWrite(write: () => void, path: string): StateDirWrite {
	try {
		write();
		return {ok: true};
	} catch (error) {
		return {ok: false, error: error instanceof StateDirError ? error : new StateDirError(path, (error as Error).message, {cause: error})};
	}
}
