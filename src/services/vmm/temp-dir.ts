import {mkdtempSync, chmodSync, rmSync} from 'node:fs';
import path from 'node:path';
import type winston from 'winston';

/** Creates the VM's private temporary directory (mode 0700) under `root`. */
export function createTempDir(root: string, cid: number): string {
	const directory = mkdtempSync(path.join(root, `vmwarden-${cid}-`));
	// mkdtemp already uses 0700; chmod makes it independent of the umask and the platform.
	chmodSync(directory, 0o700);
	return directory;
}

/** Removes a temporary directory; a failure is logged, never thrown (as in the reference). */
export function removeTempDir(directory: string, logger: winston.Logger): boolean {
	try {
		rmSync(directory, {recursive: true, force: true, maxRetries: 2});
		return true;
	} catch (error) {
		logger.error(`Error removing temporary directory ${directory}: ${String(error)}`);
		return false;
	}
}
