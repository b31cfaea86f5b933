/**
 * The light VMM of the fleet benchmarks: bench/stand-in/stand-in.c, built (and gcc installed when
 * missing) by bench/stand-in/build.sh into .vmwarden-cache/. VMWARDEN_BENCH_VMM points at another.
 */
import {execFileSync} from 'node:child_process';
import {accessSync, constants} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';

const BUILD_SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'stand-in', 'build.sh');

export function standInPath(): string {
	const chosen = process.env['VMWARDEN_BENCH_VMM'];
	if (chosen !== undefined && chosen !== '') {
		return chosen;
	}

	const output = execFileSync('bash', [BUILD_SCRIPT], {encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit']});
	return output.trim().split('\n').at(-1)!;
}

/** A memory file system (tmpfs) on most Linux systems, where runtime files (sockets, VM directories) belong, as /run's do. */
const MEMORY_FS = '/dev/shm';

/**
 * Where a benchmark keeps its files (both sides: sockets, temporary directories): VMWARDEN_BENCH_DIR,
 * or /dev/shm when it is there and writable, or the system's temporary directory. Creating a file
 * costs what that file system charges, and vmwarden creates four per VM (its directory, the marker,
 * stderr and failure files): on this machine that is 0.02 ms per VM on tmpfs and 0.05-1.9 ms on
 * the disk, from one minute to the next, which would measure the disk, not vmwarden.
 */
export function benchRoot(): string {
	const chosen = process.env['VMWARDEN_BENCH_DIR'];
	if (chosen !== undefined && chosen !== '') {
		return chosen;
	}

	try {
		accessSync(MEMORY_FS, constants.W_OK);
		return MEMORY_FS;
	} catch {
		return os.tmpdir();
	}
}
