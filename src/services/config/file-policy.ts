import {realpathSync, statSync} from 'node:fs';
import {isAbsolute, relative, resolve, sep} from 'node:path';
import {InvalidConfigError} from '../../errors.js';

/**
 * What the files a `VmConfig` names may be, chosen by the host (see docs/security.md). A config
 * often comes from a client the host trusts less, and vmwarden opens its paths with the host's
 * privileges; the policy is how the host narrows that. Every field is optional and the default is
 * the strict choice: `{}` is the safe policy.
 *
 * Whatever the policy, vmwarden always: opens a path first without reading or writing it (Linux's
 * `O_PATH`: no FIFO is waited on, no device is woken), checks that descriptor, then re-opens that
 * same file (never the path again) for the VMM; takes inputs (kernel, initrd, bootloader,
 * read-only disks, indirect files) only as regular files or block devices; never opens an output
 * (console, log) or a writable disk through a symbolic link, nor one with more than one hard link;
 * takes outputs only as regular files; refuses descriptors 0, 1 and 2.
 */
export interface FilePolicy {
	/**
	 * Directories the config's paths must lie in, judged on the file really opened (its path as the
	 * kernel reports it for the open descriptor, every symbolic link resolved), so a link or a `..`
	 * cannot lead out. Outputs and writable disks must in addition be reached without any symbolic
	 * link below the allowed directory. Absolute paths of existing directories; the host's own links
	 * in them are fine. Default: no restriction by directory. `[]`: no path at all, only `FileHandle`s.
	 */
	readonly allowedDirectories?: readonly string[];
	/**
	 * Whether a console or log output that does not exist is created: with `O_CREAT|O_EXCL|O_NOFOLLOW`,
	 * mode 0600, in its directory opened and checked first (inside `allowedDirectories` when set,
	 * writable by the requester when one is given, and then owned by it). Default false: an output
	 * must already exist, so a config never makes a file appear anywhere.
	 */
	readonly createOutputs?: boolean;
	/**
	 * Whether a bare number in the config may name one of the host's own open descriptors. Default
	 * false: a number the config carries is a number the client chose, and the host's descriptors
	 * (its state-dir lock, its sockets) are not the client's to hand to a VM. 0, 1 and 2, the host's
	 * standard streams, are refused even then. `FileHandle`s are always taken: only code running in
	 * the host can make one.
	 */
	readonly allowHostDescriptors?: boolean;
}

/**
 * Who asked for the VM, as far as files go: vmwarden refuses a path this user could not open with
 * the access the VM gets, judged from the file's owner, group and mode bits (ACLs are not read).
 * The check is skipped when `uid` is the host's own effective uid: the kernel then asks the same
 * question on open, and answers it better.
 */
export interface FileRequester {
	uid: number;
	/** Its groups, primary and supplementary. Default none: group permission bits then grant nothing. */
	gids?: readonly number[];
}

/** An allowed directory as given and with every symbolic link resolved. */
export interface AllowedDirectory {
	given: string;
	real: string;
}

/** A policy with its defaults applied and its directories resolved, ready for the file checks. */
export interface ResolvedFilePolicy {
	allowed: AllowedDirectory[] | undefined;
	createOutputs: boolean;
	allowHostDescriptors: boolean;
	/** Undefined when there is none, or when it is the host's own user. */
	requester: FileRequester | undefined;
}

const MAX_ALLOWED_DIRECTORIES = 64;

function checkFlag(field: string, value: unknown): boolean {
	if (value !== undefined && typeof value !== 'boolean') {
		throw new InvalidConfigError(field, 'must be a boolean');
	}

	return value ?? false;
}

function resolveDirectory(field: string, directory: unknown): AllowedDirectory {
	if (typeof directory !== 'string' || directory.length === 0 || directory.includes('\0') || !isAbsolute(directory)) {
		throw new InvalidConfigError(field, 'must be an absolute path without NUL bytes');
	}

	try {
		const real = realpathSync(directory);
		if (!statSync(real).isDirectory()) {
			throw new InvalidConfigError(field, `${JSON.stringify(directory)} is not a directory`);
		}

		return {given: resolve(directory), real};
	} catch (error) {
		if (error instanceof InvalidConfigError) {
			throw error;
		}

		throw new InvalidConfigError(field, `${JSON.stringify(directory)} cannot be resolved: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, {cause: error});
	}
}

function isId(value: unknown): value is number {
	return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 && value <= 0xFF_FF_FF_FE;
}

function checkRequester(requester: FileRequester | undefined): FileRequester | undefined {
	if (requester === undefined) {
		return undefined;
	}

	if (!isId(requester.uid)) {
		throw new InvalidConfigError('requester.uid', 'must be a user id: an integer from 0 to 4294967294');
	}

	if (requester.gids !== undefined && (!Array.isArray(requester.gids) || requester.gids.length > 65_536 || !requester.gids.every(gid => isId(gid)))) {
		throw new InvalidConfigError('requester.gids', 'must be a list of group ids');
	}

	return requester.uid === process.geteuid?.() ? undefined : {uid: requester.uid, gids: [...requester.gids ?? []]};
}

/**
 * Applies the defaults and resolves the allowed directories (once per call: a host may move them).
 * Throws `InvalidConfigError` naming `filePolicy.<field>` or `requester.<field>` for a bad policy.
 */
export function resolveFilePolicy(policy: FilePolicy = {}, requester?: FileRequester): ResolvedFilePolicy {
	if (typeof policy !== 'object' || policy === null) {
		throw new InvalidConfigError('filePolicy', 'must be an object');
	}

	const {allowedDirectories} = policy;
	if (allowedDirectories !== undefined && (!Array.isArray(allowedDirectories) || allowedDirectories.length > MAX_ALLOWED_DIRECTORIES)) {
		throw new InvalidConfigError('filePolicy.allowedDirectories', `must be a list of at most ${MAX_ALLOWED_DIRECTORIES} directories`);
	}

	return {
		allowed: allowedDirectories?.map((directory, index) => resolveDirectory(`filePolicy.allowedDirectories[${index}]`, directory)),
		createOutputs: checkFlag('filePolicy.createOutputs', policy.createOutputs),
		allowHostDescriptors: checkFlag('filePolicy.allowHostDescriptors', policy.allowHostDescriptors),
		requester: checkRequester(requester),
	};
}

/** `path` relative to `directory` when it lies inside it (or is it), else undefined. */
export function pathInside(directory: string, path: string): string | undefined {
	const rest = relative(directory, path);
	return rest === '' || (rest !== '..' && !rest.startsWith(`..${sep}`) && !isAbsolute(rest)) ? rest : undefined;
}
