import {closeSync, fstatSync, openSync, readdirSync, readlinkSync} from 'node:fs';
import {ConfigurationError} from './failures.js';

const PROC_SELF_FD = /^\/proc\/self\/fd\/(\d+)$/;

/** An error as Rust's `io::Error` displays it: `No such file or directory (os error 2)`. */
export function osErrorText(error: unknown): string {
	const {code, errno, message} = error as NodeJS.ErrnoException;
	const texts: Record<string, string> = {
		ENOENT: 'No such file or directory',
		EACCES: 'Permission denied',
		EISDIR: 'Is a directory',
		EBADF: 'Bad file descriptor',
		EADDRINUSE: 'Address in use',
		ENOTDIR: 'Not a directory',
		EROFS: 'Read-only file system',
		ENXIO: 'No such device or address',
		ECONNREFUSED: 'Connection refused',
	};
	const text = code === undefined ? undefined : texts[code];
	return text === undefined ? message : `${text} (os error ${Math.abs(errno ?? 0)})`;
}

/** The N of a `/proc/self/fd/N` path, else undefined. */
export function procSelfDescriptor(path: string): number | undefined {
	const match = PROC_SELF_FD.exec(path);
	return match === null ? undefined : Number(match[1]);
}

function link(fd: number | string): string | undefined {
	try {
		return readlinkSync(`/proc/self/fd/${fd}`);
	} catch {
		return undefined;
	}
}

/**
 * Whether descriptor N is one the simulator inherited. Node cannot say directly: at start-up it
 * marks descriptors 0 to 16 close-on-exec (libuv's `uv_disable_stdio_inheritance`) and then opens
 * its own (epoll, eventfd, the ends of internal pipes) in the free numbers. So an open descriptor
 * counts as inherited unless it is an anonymous inode or a pipe whose other end this process also
 * holds: what Node's internals look like, and what a caller's descriptor does not.
 */
export function isInheritedDescriptor(fd: number): boolean {
	const target = link(fd);
	if (target === undefined || target.startsWith('anon_inode:')) {
		return false;
	}

	if (!target.startsWith('pipe:')) {
		return true;
	}

	return !readdirSync('/proc/self/fd').some(other => other !== String(fd) && link(other) === target);
}

/** A file crosvm got hold of: a descriptor, and whether the simulator opened it. */
export interface HeldFile {
	fd: number;
	/** False for an inherited `/proc/self/fd/N`, which stays open until exit like crosvm's copy. */
	opened: boolean;
}

/**
 * crosvm's `open_file_or_duplicate`: `/proc/self/fd/N` means the inherited descriptor N (the start
 * fails when it is not open), anything else is opened with `flags`. Throws `ConfigurationError`.
 */
export function openFileOrInherited(path: string, flags: string, what: string): HeldFile {
	const inherited = procSelfDescriptor(path);
	if (inherited !== undefined) {
		if (!isInheritedDescriptor(inherited)) {
			throw new ConfigurationError(`failed to open ${what} ${path}: Bad file descriptor (os error 9)`);
		}

		return {fd: inherited, opened: false};
	}

	try {
		const fd = openSync(path, flags, 0o666);
		if (fstatSync(fd).isDirectory() && flags !== 'r') {
			closeSync(fd);
			throw Object.assign(new Error('is a directory'), {code: 'EISDIR', errno: 21});
		}

		return {fd, opened: true};
	} catch (error) {
		throw new ConfigurationError(`failed to open ${what} ${path}: ${osErrorText(error)}`);
	}
}
