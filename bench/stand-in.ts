/**
 * The light VMM of the fleet benchmarks: bench/stand-in/stand-in.c, built (and gcc installed when
 * missing) by bench/stand-in/build.sh into .vmwarden-cache/. VMWARDEN_BENCH_VMM points at another.
 */
import {execFileSync} from 'node:child_process';
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

/**
 * Where a benchmark keeps its files (both sides: sockets, temporary directories): VMWARDEN_BENCH_DIR,
 * or the system's temporary directory. Creating a file costs what that file system charges, and
 * vmwarden creates four per VM (its directory, the marker, stderr and failure files): on a /tmp that
 * something watches, that cost dominates a start.
 */
export function benchRoot(): string {
	const chosen = process.env['VMWARDEN_BENCH_DIR'];
	return chosen !== undefined && chosen !== '' ? chosen : os.tmpdir();
}
