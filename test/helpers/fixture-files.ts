import {lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';

/** A guest script the simulator runs to a clean power-off. */
export const POWEROFF_GUEST = '#!crosvm-sim-guest\npoweroff\n';

export interface FixtureFiles {
	dir: string;
	/** A kernel (a guest script that powers off). */
	kernel: string;
	/** A 4 KiB disk image. */
	image: string;
	/** An empty directory. */
	directory: string;
	remove: () => void;
}

/** Real files to validate and open, made at once (test.each tables name them at load time). */
export function makeFixtureFiles(prefix: string): FixtureFiles {
	const dir = mkdtempSync(join(tmpdir(), prefix));
	const files = {dir, kernel: join(dir, 'kernel'), image: join(dir, 'disk.img'), directory: join(dir, 'directory')};
	writeFileSync(files.kernel, POWEROFF_GUEST);
	writeFileSync(files.image, Buffer.alloc(4096));
	mkdirSync(files.directory);
	return {
		...files,
		remove() {
			rmSync(dir, {recursive: true, force: true});
		},
	};
}

/** What an attack must not change about a file: its bytes, size, mode, owner and times. */
export function fileState(path: string): {content: string; size: number; mode: number; uid: number; mtimeMs: number; ctimeMs: number} {
	const stats = lstatSync(path);
	return {content: readFileSync(path, 'latin1'), size: stats.size, mode: stats.mode, uid: stats.uid, mtimeMs: stats.mtimeMs, ctimeMs: stats.ctimeMs};
}
