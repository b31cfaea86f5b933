import {isAbsolute, resolve} from 'node:path';
import {InvalidConfigError} from '../../errors.js';

/** The fields of a `VmConfig` that name a single file. */
const FILE_FIELDS = ['bootloader', 'kernel', 'initrd', 'consoleOutput', 'logOutput'] as const;

function isRecord(value: unknown): value is Record<string, unknown> {
	return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Rewrites every path (a non-empty string in a file field) of a config not yet validated, in
 * place: anything else is left for `validateConfig` to refuse with its field.
 */
function mapPaths(config: Record<string, unknown>, map: (field: string, path: string) => string): void {
	for (const field of FILE_FIELDS) {
		const value = config[field];
		if (typeof value === 'string' && value.length > 0) {
			config[field] = map(field, value);
		}
	}

	const {disks, indirectFiles} = config;
	if (Array.isArray(disks)) {
		for (const [index, disk] of disks.entries()) {
			if (isRecord(disk) && typeof disk['image'] === 'string' && disk['image'].length > 0) {
				disk['image'] = map(`disks[${index}].image`, disk['image']);
			}
		}
	}

	if (Array.isArray(indirectFiles)) {
		for (const [index, file] of indirectFiles.entries()) {
			if (typeof file === 'string' && file.length > 0) {
				indirectFiles[index] = map(`indirectFiles[${index}]`, file);
			}
		}
	}
}

/** Resolves relative paths against `directory` (a config file's own directory), in place. */
export function resolvePaths(config: Record<string, unknown>, directory: string): void {
	mapPaths(config, (_field, path) => resolve(directory, path));
}

/**
 * Refuses a relative path: a config sent to the daemon has no directory of its own, and the
 * daemon's working directory means nothing to its client.
 */
export function requireAbsolutePaths(config: Record<string, unknown>): void {
	mapPaths(config, (field, path) => {
		if (!isAbsolute(path)) {
			throw new InvalidConfigError(field, `${JSON.stringify(path)} is relative: a config sent to the daemon names files by absolute path`);
		}

		return path;
	});
}
