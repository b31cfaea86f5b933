import {InvalidConfigError} from '../../errors.js';

/**
 * How large a `VmConfig` may be, checked before any work is done on it. Each bound is far above
 * what a real VM needs and far below what would hurt the host: together they keep the VMM's argv
 * well inside Linux's limits (`MAX_ARG_STRLEN`, 128 KiB per argument, and `ARG_MAX`, a quarter of
 * the stack limit for all of argv and the environment), where `execve` would fail with `E2BIG`.
 */
export const CONFIG_LIMITS = {
	/** `params`, in UTF-8 bytes. */
	paramsBytes: 64 * 1024,
	/** A path, in UTF-8 bytes: Linux's `PATH_MAX` less its NUL. */
	pathBytes: 4095,
	/** `cpuAffinity`, in UTF-8 bytes. */
	cpuAffinityBytes: 4096,
	/** `platformVersion`, in UTF-8 bytes (npm's `semver` refuses longer ranges anyway). */
	platformVersionBytes: 256,
	/** One task profile name, in UTF-8 bytes. */
	taskProfileBytes: 256,
	taskProfiles: 64,
	disks: 64,
	indirectFiles: 64,
} as const;

/** One argument of the VMM's argv, in bytes with its NUL: below `MAX_ARG_STRLEN` (128 KiB). */
export const MAX_ARGUMENT_BYTES = 96 * 1024;

/** All of the VMM's argv, counted as the kernel does (bytes, NULs and pointers). */
export const MAX_ARGV_BYTES = 256 * 1024;

const POINTER_BYTES = 8;

/**
 * Refuses a string longer than `maxBytes` UTF-8 bytes. The length is looked at before the bytes
 * are counted, so a huge string costs nothing.
 */
export function checkStringBytes(field: string, value: string, maxBytes: number): void {
	// A UTF-16 code unit is at least one UTF-8 byte.
	if (value.length > maxBytes || Buffer.byteLength(value) > maxBytes) {
		throw new InvalidConfigError(field, `is longer than ${maxBytes} bytes`);
	}
}

/** Refuses an array with more than `max` entries, before it is walked. */
export function checkCount(field: string, value: readonly unknown[], max: number): void {
	if (value.length > max) {
		throw new InvalidConfigError(field, `has ${value.length} entries: at most ${max}`);
	}
}

/**
 * Refuses a VMM argv that `execve` could refuse with `E2BIG`: one argument over
 * `MAX_ARGUMENT_BYTES`, or all of them over `MAX_ARGV_BYTES`. The command builders run it last, so
 * nothing is spawned for such a command line.
 */
export function checkArgvSize(args: readonly string[]): void {
	let total = 0;
	for (const [index, argument] of args.entries()) {
		const bytes = Buffer.byteLength(argument) + 1;
		if (bytes > MAX_ARGUMENT_BYTES) {
			throw new InvalidConfigError('argv', `argument ${index} is ${bytes} bytes: at most ${MAX_ARGUMENT_BYTES} (Linux refuses one over 128 KiB)`);
		}

		total += bytes + POINTER_BYTES;
	}

	if (total > MAX_ARGV_BYTES) {
		throw new InvalidConfigError('argv', `the command line is ${total} bytes: at most ${MAX_ARGV_BYTES}`);
	}
}
