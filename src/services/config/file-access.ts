import {constants, fstatSync, readFileSync} from 'node:fs';
import type {FileHandle} from 'node:fs/promises';
import type {FileAccess} from '../vmm/driver.js';

/** Mode of a file vmwarden creates (console and log outputs): its owner's only. */
export const CREATED_FILE_MODE = 0o600;

export const ACCESS_WORDS: Record<FileAccess, string> = {
	read: 'reading',
	readWrite: 'reading and writing',
	append: 'appending',
};

/** A `FileHandle` as far as vmwarden needs one: an object carrying its descriptor number. */
export function isFileHandle(value: unknown): value is FileHandle {
	return typeof value === 'object' && value !== null && typeof (value as {fd?: unknown}).fd === 'number' && typeof (value as {close?: unknown}).close === 'function';
}

export function errorCode(error: unknown): string | undefined {
	return typeof error === 'object' && error !== null && typeof (error as {code?: unknown}).code === 'string' ? (error as {code: string}).code : undefined;
}

/** Why `path` cannot be opened for `access`, from the error `open(2)` gave. */
export function describeOpenError(path: string, access: FileAccess, error: unknown): string {
	const shown = JSON.stringify(path);
	const code = errorCode(error);
	switch (code) {
		case 'ENOENT': {
			return `${shown} does not exist`;
		}

		case 'EISDIR': {
			return `${shown} is a directory`;
		}

		case 'ENOTDIR': {
			return `${shown} does not exist: a component of the path is not a directory`;
		}

		case 'EACCES':
		case 'EPERM': {
			return `${shown} cannot be opened for ${ACCESS_WORDS[access]}: permission denied`;
		}

		case 'EROFS': {
			return `${shown} cannot be opened for ${ACCESS_WORDS[access]}: read-only file system`;
		}

		default: {
			return `${shown} cannot be opened for ${ACCESS_WORDS[access]}: ${code ?? String(error)}`;
		}
	}
}

// O_ACCMODE values, as /proc/self/fdinfo shows them.
const ACCESS_MODES: Record<FileAccess, ReadonlySet<number>> = {
	read: new Set([constants.O_RDONLY, constants.O_RDWR]),
	readWrite: new Set([constants.O_RDWR]),
	append: new Set([constants.O_WRONLY, constants.O_RDWR]),
};

/** The `open(2)` flags of one of our descriptors, from /proc/self/fdinfo; `undefined` where there is none. */
export function descriptorFlags(fd: number): number | undefined {
	try {
		const flags = /^flags:\s*([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
		return flags ? Number.parseInt(flags[1]!, 8) : undefined;
	} catch {
		return undefined;
	}
}

/**
 * Why descriptor `fd` (the caller's) cannot serve for `access`, or `undefined` when it can: it must
 * be open and, where the system shows it, opened with an access mode that allows `access`.
 */
export function checkDescriptor(fd: number, access: FileAccess): string | undefined {
	try {
		fstatSync(fd);
	} catch (error) {
		return errorCode(error) === 'EBADF' ? `descriptor ${fd} is not open` : `descriptor ${fd} cannot be used: ${errorCode(error) ?? String(error)}`;
	}

	const flags = descriptorFlags(fd);
	if (flags !== undefined && !ACCESS_MODES[access].has(flags & 3)) {
		return `descriptor ${fd} is not open for ${ACCESS_WORDS[access]}`;
	}

	return undefined;
}
