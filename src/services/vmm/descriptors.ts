import {closeSync, openSync} from 'node:fs';
import {InvalidConfigError, VmwardenError} from '../../errors.js';
import {checkDescriptor, CREATED_FILE_MODE, describeOpenedFile, describeOpenError, openFlags} from '../config/file-access.js';
import type {DescriptorAssignment} from './driver.js';

/** The descriptors of a plan, ready for execa's `stdio`. */
export interface OpenedDescriptors {
	/** The `stdio` entries for child fds 3, 4, ... in order: a descriptor, or `'pipe'` for a channel. */
	stdio: Array<number | 'pipe'>;
	/** Closes what vmwarden opened (never the caller's descriptors). Idempotent. */
	close(): void;
}

function closeAll(descriptors: number[]): void {
	for (const fd of descriptors.splice(0)) {
		try {
			closeSync(fd);
		} catch {
			// Already gone: nothing left to release.
		}
	}
}

function openPath(entry: DescriptorAssignment & {kind: 'file'}, path: string, opened: number[]): number {
	let fd: number;
	try {
		// Node opens with O_CLOEXEC; the child still inherits it, since spawning dup2()s it into place.
		fd = openSync(path, openFlags(entry.access), CREATED_FILE_MODE);
	} catch (error) {
		throw new InvalidConfigError(entry.field, describeOpenError(path, entry.access, error), {cause: error});
	}

	opened.push(fd);
	const problem = describeOpenedFile(path, fd);
	if (problem !== undefined) {
		throw new InvalidConfigError(entry.field, problem);
	}

	return fd;
}

function passThrough(entry: DescriptorAssignment & {kind: 'file'}, fd: number): number {
	if (fd === -1) {
		throw new InvalidConfigError(entry.field, 'the FileHandle is closed');
	}

	const problem = checkDescriptor(fd, entry.access);
	if (problem !== undefined) {
		throw new InvalidConfigError(entry.field, problem);
	}

	return fd;
}

/**
 * Opens the files of a descriptor plan: paths per their access (read: `O_RDONLY`, readWrite:
 * `O_RDWR`, append: `O_WRONLY|O_APPEND|O_CREAT`, mode 0600); descriptors and `FileHandle`s pass
 * through once checked open; channels become `'pipe'`. On any failure it closes what it opened and
 * throws `InvalidConfigError` naming the field.
 */
export function openDescriptors(plan: DescriptorAssignment[]): OpenedDescriptors {
	const opened: number[] = [];
	const stdio: Array<number | 'pipe'> = [];
	try {
		for (const [index, entry] of plan.entries()) {
			if (entry.childFd !== index + 3) {
				throw new VmwardenError('INVALID_DESCRIPTOR_PLAN', `descriptor plan entry ${index} (${entry.field}) is child fd ${entry.childFd}, expected ${index + 3}`);
			}

			if (entry.kind === 'channel') {
				stdio.push('pipe');
			} else if (typeof entry.source === 'string') {
				stdio.push(openPath(entry, entry.source, opened));
			} else {
				stdio.push(passThrough(entry, typeof entry.source === 'number' ? entry.source : entry.source.fd));
			}
		}
	} catch (error) {
		closeAll(opened);
		throw error;
	}

	return {
		stdio,
		close() {
			closeAll(opened);
		},
	};
}
