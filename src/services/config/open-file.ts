import {closeSync, constants, fchownSync, fstatSync, openSync, readlinkSync, type Stats} from 'node:fs';
import type {FileHandle} from 'node:fs/promises';
import {basename, dirname, join, resolve} from 'node:path';
import {InvalidConfigError} from '../../errors.js';
import type {FileAccess} from '../vmm/driver.js';
import {checkDescriptor, CREATED_FILE_MODE, describeOpenError, errorCode} from './file-access.js';
import {pathInside, type FileRequester, type ResolvedFilePolicy} from './file-policy.js';

// Linux's O_PATH, the same on x86_64 and aarch64 (Node does not export it). Such a descriptor names
// a file without opening it: no driver's open() runs, a FIFO is not waited on, nothing is read.
const O_PATH = 0o10_000_000;

const {O_APPEND, O_CREAT, O_DIRECTORY, O_EXCL, O_NOCTTY, O_NOFOLLOW, O_RDONLY, O_RDWR, O_WRONLY} = constants;

/** How the file is re-opened for the VMM once checked. */
const REOPEN_FLAGS: Record<FileAccess, number> = {
	read: O_RDONLY | O_NOCTTY,
	readWrite: O_RDWR | O_NOCTTY,
	append: O_WRONLY | O_APPEND | O_NOCTTY,
};

// Permission bits, as in each triplet of st_mode.
const READ = 4;
const WRITE = 2;
const SEARCH = 1;

const WANTED: Record<FileAccess, {bits: number; words: string}> = {
	read: {bits: READ, words: 'readable'},
	readWrite: {bits: READ | WRITE, words: 'readable and writable'},
	append: {bits: WRITE, words: 'writable'},
};

/** A path of the config and the access the VMM gets to it. */
export interface PathRequest {
	field: string;
	path: string;
	access: FileAccess;
}

function refuse(field: string, reason: string, cause?: unknown): never {
	throw new InvalidConfigError(field, reason, cause === undefined ? undefined : {cause});
}

function describeKind(stats: Stats): string {
	if (stats.isFIFO()) {
		return 'a FIFO';
	}

	if (stats.isSocket()) {
		return 'a socket';
	}

	if (stats.isCharacterDevice()) {
		return 'a character device';
	}

	return stats.isBlockDevice() ? 'a block device' : 'a regular file';
}

function roleWords(access: FileAccess): string {
	return access === 'read' ? 'an input' : access === 'append' ? 'an output' : 'a writable disk';
}

/** Inputs and disks are regular files or block devices; outputs regular files (or, handed over, anything but a directory). */
function kindProblem(stats: Stats, access: FileAccess, handedOver: boolean): string | undefined {
	if (stats.isSymbolicLink()) {
		return `is a symbolic link: ${roleWords(access)} is never opened through one`;
	}

	if (stats.isDirectory()) {
		return 'is a directory';
	}

	if (access === 'append') {
		return handedOver || stats.isFile() ? undefined : `is ${describeKind(stats)}: an output must be a regular file`;
	}

	return stats.isFile() || stats.isBlockDevice() ? undefined : `is ${describeKind(stats)}: ${roleWords(access)} must be a regular file or a block device`;
}

/** Whether `requester` may do `bits` to a file, by owner, group and mode (root may do anything). */
function permits(stats: Stats, requester: FileRequester, bits: number): boolean {
	if (requester.uid === 0) {
		return true;
	}

	const shift = stats.uid === requester.uid ? 6 : requester.gids?.includes(stats.gid) ? 3 : 0;
	return ((stats.mode >> shift) & bits) === bits;
}

function describeOwner(stats: Stats): string {
	return `owner ${stats.uid}, group ${stats.gid}, mode ${(stats.mode & 0o7777).toString(8).padStart(4, '0')}`;
}

/** The kernel's path for one of our descriptors: where the opened file really is. */
function realPathOf(fd: number): string {
	return readlinkSync(`/proc/self/fd/${fd}`);
}

/**
 * Where an output or a writable disk must really be, for a restricted policy: below an allowed
 * directory by name, with no symbolic link between that directory and the file.
 */
function expectedRealPath(request: PathRequest, path: string, policy: ResolvedFilePolicy): string | undefined {
	if (policy.allowed === undefined || request.access === 'read') {
		return undefined;
	}

	for (const directory of policy.allowed) {
		const rest = pathInside(directory.given, path) ?? pathInside(directory.real, path);
		if (rest !== undefined) {
			return join(directory.real, rest);
		}
	}

	return refuse(request.field, `${JSON.stringify(request.path)} is outside the allowed directories`);
}

function checkLocation(request: PathRequest, real: string, expected: string | undefined, policy: ResolvedFilePolicy): void {
	const shown = JSON.stringify(request.path);
	if (expected !== undefined && real !== expected) {
		refuse(request.field, `${shown} is reached through a symbolic link (it is ${JSON.stringify(real)}): ${roleWords(request.access)} must be reached without one`);
	}

	if (policy.allowed !== undefined && !policy.allowed.some(directory => pathInside(directory.real, real) !== undefined)) {
		refuse(request.field, real === resolve(request.path) ? `${shown} is outside the allowed directories` : `${shown} resolves to ${JSON.stringify(real)}, outside the allowed directories`);
	}
}

/** Every check on the pinned (`O_PATH`) descriptor of an existing file. */
function checkPinned(request: PathRequest, pinned: number, expected: string | undefined, policy: ResolvedFilePolicy): void {
	const {field, access} = request;
	const shown = JSON.stringify(request.path);
	const stats = fstatSync(pinned);
	const problem = kindProblem(stats, access, false);
	if (problem !== undefined) {
		refuse(field, `${shown} ${problem}`);
	}

	checkLocation(request, realPathOf(pinned), expected, policy);
	// A second name could be a link to a file the client may not write (where the kernel's
	// protected_hardlinks is off): writing through one name changes the other.
	if (access !== 'read' && stats.isFile() && stats.nlink > 1) {
		refuse(field, `${shown} has ${stats.nlink} hard links: ${roleWords(access)} must have one name only`);
	}

	const {requester} = policy;
	if (requester !== undefined && !permits(stats, requester, WANTED[access].bits)) {
		refuse(field, `${shown} is not ${WANTED[access].words} by uid ${requester.uid} (${describeOwner(stats)})`);
	}
}

/** A missing output, created in its directory (pinned and checked first) and never elsewhere. */
function createOutput(request: PathRequest, path: string, expected: string | undefined, policy: ResolvedFilePolicy, open: boolean): number | undefined {
	const {field} = request;
	const shown = JSON.stringify(request.path);
	if (!policy.createOutputs) {
		refuse(field, `${shown} does not exist, and the file policy does not let vmwarden create outputs`);
	}

	const parent = dirname(path);
	let pinnedParent: number;
	try {
		pinnedParent = openSync(parent, O_PATH | O_DIRECTORY);
	} catch (error) {
		const code = errorCode(error);
		return refuse(field, `${shown} cannot be created: ${code === 'ENOENT' || code === 'ENOTDIR' ? 'its directory does not exist' : code ?? String(error)}`, error);
	}

	try {
		checkLocation(request, realPathOf(pinnedParent), expected === undefined ? undefined : dirname(expected), policy);
		const {requester} = policy;
		if (requester !== undefined) {
			const stats = fstatSync(pinnedParent);
			if (!permits(stats, requester, WRITE | SEARCH)) {
				refuse(field, `${shown} cannot be created: uid ${requester.uid} may not create files in ${JSON.stringify(parent)} (${describeOwner(stats)})`);
			}
		}

		if (!open) {
			return undefined;
		}

		let fd: number;
		try {
			// Through the pinned directory: the file lands where the checks were made, or nowhere.
			fd = openSync(`/proc/self/fd/${pinnedParent}/${basename(path)}`, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_NOFOLLOW | O_NOCTTY, CREATED_FILE_MODE);
		} catch (error) {
			const code = errorCode(error);
			return refuse(field, code === 'EEXIST' ? `${shown} appeared while vmwarden was creating it` : `${shown} cannot be created: ${code === 'EACCES' ? 'permission denied' : code ?? String(error)}`, error);
		}

		if (requester !== undefined) {
			try {
				// The requester's file, as if it had created it. Only a root host can give it away.
				fchownSync(fd, requester.uid, -1);
			} catch {
				// Not root: the file stays the host's, mode 0600.
			}
		}

		return fd;
	} finally {
		closeSync(pinnedParent);
	}
}

/**
 * Checks one path of the config under `policy` and, when `open`, opens it for the VMM. The path is
 * first opened with `O_PATH` (and `O_NOFOLLOW` for outputs and writable disks), which neither reads,
 * writes, blocks nor wakes a device; every check is made on that descriptor; the file is then
 * re-opened through `/proc/self/fd/N`, which is that same file whatever happened to the path
 * meanwhile. Returns the re-opened descriptor (the caller's to close), or undefined when only
 * checking. Throws `InvalidConfigError` naming the field.
 */
export function openConfigPath(request: PathRequest, policy: ResolvedFilePolicy, open: true): number;
export function openConfigPath(request: PathRequest, policy: ResolvedFilePolicy, open: false): undefined;
export function openConfigPath(request: PathRequest, policy: ResolvedFilePolicy, open: boolean): number | undefined {
	const {field, access} = request;
	// `..` is resolved by name here, so that what is checked by name is what is opened.
	const path = resolve(request.path);
	const expected = expectedRealPath(request, path, policy);
	let pinned: number;
	try {
		pinned = openSync(path, O_PATH | (access === 'read' ? 0 : O_NOFOLLOW));
	} catch (error) {
		if (access === 'append' && errorCode(error) === 'ENOENT') {
			return createOutput(request, path, expected, policy, open);
		}

		return refuse(field, describeOpenError(request.path, access, error), error);
	}

	try {
		checkPinned(request, pinned, expected, policy);
		if (!open) {
			return undefined;
		}

		try {
			return openSync(`/proc/self/fd/${pinned}`, REOPEN_FLAGS[access]);
		} catch (error) {
			return refuse(field, describeOpenError(request.path, access, error), error);
		}
	} finally {
		closeSync(pinned);
	}
}

/** Why a config can never name descriptor 0, 1 or 2, whatever the policy. */
export const STANDARD_STREAMS = 'descriptors 0, 1 and 2 are the host\'s standard input, output and error';

/**
 * Checks a descriptor the config hands over (a number, or a `FileHandle`'s) and returns it: a
 * number only when the policy lets a config name the host's descriptors, never 0-2; open, with an
 * access mode that allows `access`, and of a kind the role takes.
 */
export function checkHandedDescriptor(field: string, source: number | FileHandle, access: FileAccess, policy: ResolvedFilePolicy): number {
	const fd = typeof source === 'number' ? source : source.fd;
	if (typeof source === 'number' && !policy.allowHostDescriptors && fd > 2) {
		refuse(field, `a bare number (${fd}) would name one of the host's own descriptors: hand over a FileHandle, or let the file policy allow host descriptors`);
	}

	if (fd === -1) {
		refuse(field, 'the FileHandle is closed');
	}

	if (fd >= 0 && fd <= 2) {
		refuse(field, STANDARD_STREAMS);
	}

	const problem = checkDescriptor(fd, access);
	if (problem !== undefined) {
		refuse(field, problem);
	}

	const kind = kindProblem(fstatSync(fd), access, true);
	if (kind !== undefined) {
		refuse(field, `descriptor ${fd} ${kind}`);
	}

	return fd;
}
