import {mkdtempSync, rmSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join, resolve} from 'node:path';
import {execa, type Options, type Result} from 'execa';

/** The compiled simulator: run `npm run build` before these tests (`npm test` does). */
export const SIM = resolve('dist/crosvm-sim/cli.js');

/** The build the simulator emulates, as `CROSVM_SIM_*` variables. */
export interface SimBuildChoice {
	build?: 'current' | 'aosp-2022';
	os?: 'linux' | 'android';
	arch?: 'x86_64' | 'aarch64';
}

export type SimResult = Result<{reject: false; encoding: 'utf8'}>;

/** Runs the simulator with an argument array (never a shell); never rejects on a non-zero exit. */
export async function runSim(args: readonly string[], choice: SimBuildChoice = {}, options: Options = {}): Promise<SimResult> {
	return execa(SIM, args, {
		reject: false,
		timeout: 20_000,
		...options,
		env: {
			CROSVM_SIM_BUILD: choice.build ?? 'current',
			CROSVM_SIM_OS: choice.os ?? '',
			CROSVM_SIM_ARCH: choice.arch ?? '',
			...(options.env as Record<string, string> | undefined),
		},
	}) as unknown as Promise<SimResult>;
}

/** A temporary directory with guest scripts and other files, removed by `remove`. */
export interface Scratch {
	dir: string;
	/** Writes a guest script (the header is added) and returns its path. */
	guest(name: string, ...lines: string[]): string;
	/** Writes a file and returns its path. */
	file(name: string, content: string): string;
	path(name: string): string;
	remove: () => void;
}

export function makeScratch(prefix = 'crosvm-sim-test-'): Scratch {
	const dir = mkdtempSync(join(tmpdir(), prefix));
	const file = (name: string, content: string) => {
		const path = join(dir, name);
		writeFileSync(path, content);
		return path;
	};

	return {
		dir,
		file,
		guest: (name, ...lines) => file(name, ['#!crosvm-sim-guest', ...lines, ''].join('\n')),
		path: name => join(dir, name),
		remove() {
			rmSync(dir, {recursive: true, force: true});
		},
	};
}
