import {existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join, resolve} from 'node:path';
import {execa, type ResultPromise} from 'execa';

/** The built command and simulator: run `npm run build` before these tests. */
export const VMWARDEN = resolve('dist/cli/main.js');
export const SIM = resolve('dist/crosvm-sim/cli.js');

export function requireBuild(): void {
	for (const file of [VMWARDEN, SIM]) {
		if (!existsSync(file)) {
			throw new Error(`${file} is missing: run npm run build first`);
		}
	}
}

/** A directory per test: guest scripts, configs, and the TMPDIR the VMs' temporary directories go to. */
export interface CliScratch {
	dir: string;
	tmp: string;
	guest(name: string, ...lines: string[]): string;
	/** Writes a JSON (or raw text) config and returns its path. */
	config(name: string, content: unknown): string;
	env(): Record<string, string>;
	/** Whatever is left in the VMs' TMPDIR: empty once every VM was cleaned up. */
	leftovers(): string[];
	remove(): void;
}

export function cliScratch(): CliScratch {
	const dir = mkdtempSync(join(tmpdir(), 'vmw-cli-test-'));
	const tmp = mkdtempSync(join(tmpdir(), 'vmw-cli-tmp-'));
	const write = (name: string, text: string) => {
		const path = join(dir, name);
		writeFileSync(path, text);
		return path;
	};

	return {
		dir,
		tmp,
		guest: (name, ...lines) => write(name, ['#!crosvm-sim-guest', ...lines, ''].join('\n')),
		config: (name, content) => write(name, typeof content === 'string' ? content : JSON.stringify(content)),
		env: () => ({TMPDIR: tmp, CROSVM_SIM_BUILD: 'current', CROSVM_SIM_OS: '', CROSVM_SIM_ARCH: ''}),
		leftovers: () => readdirSync(tmp),
		remove() {
			rmSync(dir, {recursive: true, force: true});
			rmSync(tmp, {recursive: true, force: true});
		},
	};
}

/** Runs `vmwarden ARGS` to its end; never rejects on a non-zero exit. */
export async function vmwarden(args: readonly string[], env: Record<string, string> = {}) {
	return execa(process.execPath, [VMWARDEN, ...args], {reject: false, timeout: 20_000, env, stdin: 'ignore'});
}

/**
 * Starts `vmwarden ARGS` and leaves it running, for at most `timeoutMs` (then SIGTERM): a daemon
 * that serves a whole test file needs longer than a command, on a loaded machine several minutes.
 */
export function spawnVmwarden(args: readonly string[], env: Record<string, string> = {}, timeoutMs = 30_000): ResultPromise<{reject: false; env: Record<string, string>; stdin: 'ignore'; timeout: number}> {
	return execa(process.execPath, [VMWARDEN, ...args], {reject: false, env, stdin: 'ignore', timeout: timeoutMs});
}

/** Resolves once `stream` has carried text matching `pattern` (all text so far is tested). */
export async function waitForText(stream: NodeJS.ReadableStream, pattern: RegExp, timeoutMs = 10_000): Promise<string> {
	return new Promise((resolvePromise, reject) => {
		let text = '';
		const timer = setTimeout(() => {
			stream.off('data', onData);
			reject(new Error(`no ${String(pattern)} within ${timeoutMs} ms; got: ${text}`));
		}, timeoutMs);
		const onData = (chunk: Buffer | string) => {
			text += chunk.toString();
			if (pattern.test(text)) {
				clearTimeout(timer);
				stream.off('data', onData);
				resolvePromise(text);
			}
		};

		stream.on('data', onData);
	});
}

/** Whether a pid is a live process (a zombie counts as gone). */
export function alive(pid: number): boolean {
	try {
		return !/^\S+ \(.*\) [ZX] /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
	} catch {
		return false;
	}
}

export async function waitUntil(check: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<boolean> {
	const deadline = Date.now() + timeoutMs;
	while (!(await check())) {
		if (Date.now() > deadline) {
			return false;
		}

		await new Promise(resolvePromise => {
			setTimeout(resolvePromise, 25);
		});
	}

	return true;
}
