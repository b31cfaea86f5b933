import {randomBytes} from 'node:crypto';
import {lstat, rm} from 'node:fs/promises';
import path from 'node:path';
import type winston from 'winston';
import {readSmallFileAsync} from '../state-dir/files.js';
import {privateDirProblem} from '../state-dir/private-dir.js';
import type {DirectoryToMake} from './spawn/protocol.js';
import {spawner} from './spawn/spawner.js';

/**
 * The file `createTempDir` writes into every temporary directory it makes. A reaper removes only
 * a directory holding it: a record naming any other directory names nothing vmwarden created.
 */
export const TEMP_DIR_MARKER = '.vmwarden-temp-dir';

/** The marker's content for the VM with `cid`. */
function markerText(cid: number): string {
	return `vmwarden temporary directory of CID ${cid}\n`;
}

/**
 * Whether `directory` is a normalized absolute path whose last part is a name `createTempDir` gives
 * the VM with `cid`: the prefix, then `mkdtemp`'s six characters.
 */
export function isTempDirName(directory: string, cid: number): boolean {
	return path.isAbsolute(directory) && path.resolve(directory) === directory && new RegExp(`^vmwarden-${cid}-[A-Za-z0-9]{6}$`).test(path.basename(directory));
}

/** The characters of a name's random part, as `mkdtemp` draws them. */
const NAME_CHARACTERS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/**
 * The VM's private temporary directory as the spawner makes it with the VMM's spawn request (one
 * round trip for both): a name `createTempDir` would give, drawn here, so that the command line
 * can name it before it exists. The spawner's `mkdir` fails on a name that is taken: then draw again.
 */
export function planTempDir(root: string, cid: number): DirectoryToMake {
	// A byte modulo 62 favours the first eight characters slightly (5 in 256 against 4): the name
	// stays as hard to guess as mkdtemp's, for the price of one call.
	const suffix = [...randomBytes(6)].map(byte => NAME_CHARACTERS[byte % NAME_CHARACTERS.length]).join('');
	return {path: path.join(root, `vmwarden-${cid}-${suffix}`), markerName: TEMP_DIR_MARKER, markerText: markerText(cid)};
}

/**
 * Creates the VM's private temporary directory (mode 0700) under `root`, with its marker. The spawner
 * process makes it (./spawn/spawner-source.ts): off the host's event loop and thread pool, in one
 * round trip.
 */
export async function createTempDir(root: string, cid: number): Promise<string> {
	return spawner.makeTempDir(path.join(root, `vmwarden-${cid}-`), TEMP_DIR_MARKER, markerText(cid));
}

/** Removals under way. */
const removing = new Set<Promise<boolean>>();

/**
 * Removes a temporary directory, from the spawner process (off the host's event loop and thread
 * pool, in one round trip); a failure is logged, never thrown (as in the reference). Resolves with
 * whether it is gone.
 */
export async function removeTempDir(directory: string, logger: winston.Logger): Promise<boolean> {
	const removal = spawner.removeDir(directory).then(() => true, (error: unknown) => {
		logger.error(`Error removing temporary directory ${directory}: ${String(error)}`);
		return false;
	});
	removing.add(removal);
	try {
		return await removal;
	} finally {
		removing.delete(removal);
	}
}

/** Settles once every removal started before the call has ended (for a simulated clock's tests). */
export async function removalsSettled(): Promise<void> {
	await Promise.all(removing);
}

/**
 * Why `directory` is not provably the temporary directory `createTempDir` made for `cid` (or
 * `undefined` when it is): its name, a real directory of ours that only we can change, and its
 * marker with the CID in it. `gone` when nothing is there any more; an object, not a bare string,
 * so that no problem's text can read as `gone`.
 */
export async function foreignTempDirProblem(directory: string, cid: number): Promise<{problem: string} | 'gone' | undefined> {
	if (!isTempDirName(directory, cid)) {
		return {problem: `its name is not one vmwarden gives the temporary directory of CID ${cid}`};
	}

	let problem: string | undefined;
	try {
		problem = privateDirProblem(await lstat(directory));
	} catch (error) {
		return (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'gone' : {problem: `cannot be examined: ${(error as NodeJS.ErrnoException).code ?? String(error)}`};
	}

	if (problem !== undefined) {
		return {problem};
	}

	const marker = await readSmallFileAsync(path.join(directory, TEMP_DIR_MARKER), 256);
	if (!marker.ok) {
		return {problem: `its marker ${TEMP_DIR_MARKER} ${marker.reason}`};
	}

	return marker.text === markerText(cid) ? undefined : {problem: `its marker ${TEMP_DIR_MARKER} names another VM`};
}

/** What became of a stale VM's temporary directory. */
export interface StaleTempDirRemoval {
	removed: boolean;
	/** Why it was left alone or could not be removed. */
	reason?: string;
}

/**
 * Removes a stale VM's temporary directory only if vmwarden provably created it for `cid` (see
 * `foreignTempDirProblem`); a directory already gone counts as removed. Never throws.
 */
export async function removeStaleTempDir(directory: string, cid: number): Promise<StaleTempDirRemoval> {
	const foreign = await foreignTempDirProblem(directory, cid);
	if (foreign === 'gone') {
		return {removed: true};
	}

	if (foreign !== undefined) {
		return {removed: false, reason: `left alone: ${foreign.problem}`};
	}

	try {
		// rm never follows a symbolic link inside: it removes the link.
		await rm(directory, {recursive: true, force: true, maxRetries: 2});
		return {removed: true};
	} catch (error) {
		return {removed: false, reason: `cannot be removed: ${(error as NodeJS.ErrnoException).code ?? String(error)}`};
	}
}
