import {closeSync} from 'node:fs';
import {VmwardenError} from '../../errors.js';
import {resolveFilePolicy, type FilePolicy, type FileRequester} from '../config/file-policy.js';
import {checkHandedDescriptor, openConfigPath} from '../config/open-file.js';
import type {DescriptorAssignment} from './driver.js';

/** The descriptors of a plan, ready for execa's `stdio`. */
export interface OpenedDescriptors {
	/** The `stdio` entries for child fds 3, 4, ... in order: a descriptor, or `'pipe'` for a channel. */
	stdio: Array<number | 'pipe'>;
	/** Closes what vmwarden opened (never the caller's descriptors). Idempotent; needs no `this`. */
	close(this: void): void;
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

/**
 * Opens the files of a descriptor plan under `policy` (default: the strict one, see `FilePolicy`):
 * each path is checked on a descriptor that names the file without opening it, then that same file
 * is opened per its access (read: `O_RDONLY`, readWrite: `O_RDWR`, append: `O_WRONLY|O_APPEND`; a
 * missing output is created, mode 0600, only where the policy allows). The descriptor checked is
 * the one handed to the VMM. Descriptors and `FileHandle`s pass through once checked; channels
 * become `'pipe'`. On any failure it closes what it opened and throws `InvalidConfigError` naming
 * the field.
 */
export function openDescriptors(plan: DescriptorAssignment[], policy?: FilePolicy, requester?: FileRequester): OpenedDescriptors {
	const resolved = resolveFilePolicy(policy, requester);
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
				const fd = openConfigPath({field: entry.field, path: entry.source, access: entry.access}, resolved, true);
				opened.push(fd);
				stdio.push(fd);
			} else {
				stdio.push(checkHandedDescriptor(entry.field, entry.source, entry.access, resolved));
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
