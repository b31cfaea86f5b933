import {lstatSync, mkdirSync, realpathSync, statSync, type Stats} from 'node:fs';
import {dirname, resolve} from 'node:path';
import {InvalidConfigError} from '../../errors.js';

/** The effective uid, or `undefined` on a platform without one. */
export function effectiveUid(): number | undefined {
	return process.geteuid?.();
}

/** Why `stats` (from `lstat`) is not a directory only its owner can change, or `undefined`. */
export function privateDirProblem(stats: Stats): string | undefined {
	const uid = effectiveUid();
	if (stats.isSymbolicLink()) {
		return 'is a symbolic link';
	}

	if (!stats.isDirectory()) {
		return 'is not a directory';
	}

	if (uid !== undefined && stats.uid !== uid) {
		return `is owned by uid ${stats.uid}, not by this process's effective uid ${uid}`;
	}

	if ((stats.mode & 0o022) !== 0) {
		return `is writable by ${(stats.mode & 0o020) === 0 ? 'others' : 'its group'} (mode ${(stats.mode & 0o7777).toString(8).padStart(4, '0')})`;
	}

	return undefined;
}

/**
 * Every existing folder above a private directory must be owned by root or by us and writable by
 * no one else, unless sticky (like `/tmp`): otherwise another user could rename our directory away
 * between our check and our use, and put a symbolic link in its place.
 */
function ancestorProblem(existing: string): string | undefined {
	const uid = effectiveUid();
	for (let folder = realpathSync(existing); ; folder = dirname(folder)) {
		const stats = statSync(folder);
		if (uid !== undefined && stats.uid !== 0 && stats.uid !== uid) {
			return `its parent folder ${folder} is owned by uid ${stats.uid}, neither root nor this process's effective uid ${uid}`;
		}

		if ((stats.mode & 0o022) !== 0 && (stats.mode & 0o1000) === 0) {
			return `its parent folder ${folder} is writable by others and not sticky (mode ${(stats.mode & 0o7777).toString(8).padStart(4, '0')})`;
		}

		if (dirname(folder) === folder) {
			return undefined;
		}
	}
}

function lstatOrUndefined(path: string): Stats | undefined {
	try {
		return lstatSync(path);
	} catch (error) {
		if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
			return undefined;
		}

		throw error;
	}
}

/**
 * Makes sure `path` is a directory only this process's user can change: creates it (and any
 * missing parent) with mode 0700, refuses one that is a symbolic link, not a directory, owned by
 * another uid or writable by group or others, or that lies below a folder another user can change.
 * Refusals are `InvalidConfigError`s naming `field`.
 */
export function ensurePrivateDir(path: string, field: string): void {
	const target = resolve(path);
	try {
		const missing: string[] = [];
		let existing = target;
		while (lstatOrUndefined(existing) === undefined && dirname(existing) !== existing) {
			missing.unshift(existing);
			existing = dirname(existing);
		}

		const above = missing.length === 0 ? dirname(target) : existing;
		const problem = ancestorProblem(above);
		if (problem !== undefined) {
			throw new InvalidConfigError(field, `${path}: ${problem}`);
		}

		for (const folder of missing) {
			try {
				mkdirSync(folder, {mode: 0o700});
			} catch (error) {
				// Another process made it first: it is checked below like any existing folder.
				if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
					throw error;
				}
			}

			const created = privateDirProblem(lstatSync(folder));
			if (created !== undefined) {
				throw new InvalidConfigError(field, `${folder} ${created}`);
			}
		}

		const own = privateDirProblem(lstatSync(target));
		if (own !== undefined) {
			throw new InvalidConfigError(field, `${path} ${own}`);
		}
	} catch (error) {
		if (error instanceof InvalidConfigError) {
			throw error;
		}

		throw new InvalidConfigError(field, `cannot use ${path}: ${(error as Error).message}`, {cause: error});
	}
}
