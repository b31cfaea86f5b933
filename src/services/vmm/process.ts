import {accessSync, constants, existsSync, statSync} from 'node:fs';
import path from 'node:path';
import type {Readable} from 'node:stream';
import {execa, type ResultPromise} from 'execa';
import type winston from 'winston';
import type {VmmExit} from './driver.js';
import {readFailureChannel, type FailureChannelOptions, type FailureText} from '../death/failure-channel.js';
import {streamSettled} from './stream-settled.js';
import {VmSpawnError} from '../../errors.js';

/** util-linux's `setpriv`, which sets the parent-death signal and then execs the VMM. */
export const SETPRIV_PATH = '/usr/bin/setpriv';

/** How much of the VMM's stderr is kept for the death record. */
export const STDERR_TAIL_BYTES = 4096;

/** What waiting on the VMM gave: its exit, or why it could not be known. */
export interface VmmTermination {
	exit: VmmExit;
	/** Set when the exit could not be read (no code and no signal). */
	waitError: string | undefined;
}

/** One descriptor the VMM inherits at 3, 4, ...: an open fd, or `'pipe'` for a channel vmwarden reads. */
export type ChildDescriptor = number | 'pipe';

export interface SpawnVmmOptions {
	/** The VMM as the caller named it: a path, or a name looked up on PATH. */
	vmmPath: string;
	args: string[];
	/** Descriptors for the child's fds 3, 4, ... in order. */
	descriptors: ChildDescriptor[];
	/** The child fd of the failure channel, if any. */
	failureFd: number | undefined;
	/** The child fd of the payload channel, if any. */
	payloadFd: number | undefined;
	logger: winston.Logger;
	/** Called once everything the spawn holds must be closed (the descriptors vmwarden opened). */
	onDispose?: () => void;
	failureChannel?: FailureChannelOptions;
	/** Test seam: where setpriv is looked for. */
	setprivPath?: string;
}

/**
 * Finds the VMM the way `execvp` would, so a missing or non-executable binary is a typed error before
 * anything is spawned (behind setpriv, the exec failure would otherwise look like a VM exit).
 */
export function resolveVmmPath(vmmPath: string): string {
	const candidates = vmmPath.includes('/') ? [path.resolve(vmmPath)] : (process.env['PATH'] ?? '').split(path.delimiter).filter(Boolean).map(directory => path.join(directory, vmmPath));
	let found: string | undefined;
	for (const candidate of candidates) {
		if (!existsSync(candidate) || !statSync(candidate).isFile()) {
			continue;
		}

		try {
			accessSync(candidate, constants.X_OK);
			return candidate;
		} catch {
			found ??= candidate;
		}
	}

	if (found !== undefined) {
		throw new VmSpawnError('VMM_NOT_EXECUTABLE', vmmPath, `VMM ${found} is not executable`);
	}

	throw new VmSpawnError('VMM_NOT_FOUND', vmmPath, vmmPath.includes('/') ? `VMM ${vmmPath} does not exist` : `VMM ${vmmPath} not found on PATH`);
}

let warnedNoSetpriv = false;

/**
 * The command that runs the VMM so it receives SIGKILL when this process dies, even by SIGKILL:
 * `setpriv --pdeathsig KILL -- VMM ARGS`. setpriv execs, so the pid is the VMM's. Without setpriv the
 * VMM is spawned directly and only execa's exit cleanup (which cannot run on SIGKILL) protects it;
 * this is logged once per process.
 */
export function parentDeathCommand(file: string, args: string[], logger: winston.Logger, setprivPath = SETPRIV_PATH): {file: string; args: string[]; parentDeathSignal: boolean} {
	if (existsSync(setprivPath)) {
		return {file: setprivPath, args: ['--pdeathsig', 'KILL', '--', file, ...args], parentDeathSignal: true};
	}

	if (!warnedNoSetpriv) {
		warnedNoSetpriv = true;
		logger.warn(`${setprivPath} not found: VMs will not be killed if this process dies by SIGKILL`);
	}

	return {file, args, parentDeathSignal: false};
}

/**
 * A running VMM. Lives in the VM machine's context, so it serializes to a summary (`toJSON`) and
 * never drags the subprocess into a snapshot.
 */
export class VmmProcess {
	readonly pid: number;
	/** Settles once the VMM exited (never rejects). */
	readonly terminated: Promise<VmmTermination>;
	/** The failure text, finished a bounded time after the exit. */
	readonly failure: Promise<FailureText>;
	/** The payload channel, when the VM has one. */
	readonly payloadStream: Readable | undefined;
	readonly #subprocess: ResultPromise;
	readonly #onDispose: (() => void) | undefined;
	#stderrTail: Buffer = Buffer.alloc(0);
	#termination: VmmTermination | undefined;
	#disposed = false;

	constructor(subprocess: ResultPromise, options: SpawnVmmOptions) {
		this.#subprocess = subprocess;
		this.#onDispose = options.onDispose;
		this.pid = subprocess.pid!;
		this.terminated = new Promise(resolve => {
			subprocess.once('exit', (code, signal) => {
				this.#termination = {
					exit: {exitCode: code ?? undefined, signal: signal ?? undefined},
					waitError: code === null && signal === null ? 'the VMM exited without a status' : undefined,
				};
				resolve(this.#termination);
			});
		});
		subprocess.stderr?.on('data', (chunk: Buffer) => {
			this.#stderrTail = Buffer.concat([this.#stderrTail, chunk]).subarray(-STDERR_TAIL_BYTES);
		});
		const failureStream = options.failureFd === undefined ? undefined : (subprocess.stdio[options.failureFd] as Readable | undefined);
		this.failure = failureStream === undefined ? Promise.resolve({text: '', truncated: false}) : readFailureChannel(failureStream, this.terminated, options.failureChannel);
		this.payloadStream = options.payloadFd === undefined ? undefined : (subprocess.stdio[options.payloadFd] as Readable | undefined);
	}

	/**
	 * Resolves with the failure text once every channel from the VMM has ended, or `graceMs` after
	 * its exit for one that some other process keeps open: the payload channel (a report written
	 * just before exit still counts) and stderr (for the tail) get the failure channel's bound.
	 */
	async settled(graceMs: number): Promise<FailureText> {
		const [failure] = await Promise.all([
			this.failure,
			streamSettled(this.payloadStream, this.terminated, graceMs),
			streamSettled(this.#subprocess.stderr ?? undefined, this.terminated, graceMs),
		]);
		return failure;
	}

	get hasExited(): boolean {
		return this.#termination !== undefined;
	}

	/** The last bytes the VMM wrote to stderr. */
	get stderrTail(): string {
		return this.#stderrTail.toString('utf8');
	}

	/** Sends a signal if the VMM still runs; never throws. Returns whether a signal was sent. */
	kill(signal: NodeJS.Signals = 'SIGKILL'): boolean {
		if (this.hasExited) {
			return false;
		}

		try {
			return this.#subprocess.kill(signal);
		} catch {
			return false;
		}
	}

	/** Closes every stream to the VMM and what vmwarden opened for it. Idempotent. */
	dispose(): void {
		if (this.#disposed) {
			return;
		}

		this.#disposed = true;
		for (const stream of this.#subprocess.stdio) {
			stream?.destroy();
		}

		this.#onDispose?.();
	}

	toJSON(): {pid: number; exited: boolean} {
		return {pid: this.pid, exited: this.hasExited};
	}
}

/**
 * Spawns the VMM with execa (an argument array, no shell), behind the parent-death wrapper, and
 * resolves once the operating system started it. Rejects with `VmSpawnError`.
 */
export async function spawnVmm(options: SpawnVmmOptions): Promise<VmmProcess> {
	const file = resolveVmmPath(options.vmmPath);
	const command = parentDeathCommand(file, options.args, options.logger, options.setprivPath);
	options.logger.debug(`Running ${[command.file, ...command.args].join(' ')}`);
	const subprocess = execa(command.file, command.args, {
		// execa's types only list fds 3-9 as numbers in a stdio array; any inherited fd works.
		stdio: ['ignore', 'ignore', 'pipe', ...options.descriptors] as unknown as ['ignore', 'ignore', 'pipe'],
		buffer: false,
		reject: false,
		// execa's exit hook is only the fallback: the parent-death signal also covers SIGKILL.
		cleanup: !command.parentDeathSignal,
		stripFinalNewline: false,
	});
	// The result (and any error execa reports once streams are destroyed) is not used: exit, streams
	// and errors are all watched directly.
	subprocess.then(() => undefined, () => undefined);
	try {
		await new Promise<void>((resolve, reject) => {
			subprocess.once('spawn', resolve);
			subprocess.once('error', reject);
		});
	} catch (error) {
		for (const stream of subprocess.stdio) {
			stream?.destroy();
		}

		const code = (error as NodeJS.ErrnoException).code;
		throw code === 'ENOENT'
			? new VmSpawnError('VMM_NOT_FOUND', options.vmmPath, `VMM ${options.vmmPath} does not exist`, {cause: error})
			: code === 'EACCES'
				? new VmSpawnError('VMM_NOT_EXECUTABLE', options.vmmPath, `VMM ${options.vmmPath} is not executable`, {cause: error})
				: new VmSpawnError('VMM_SPAWN_FAILED', options.vmmPath, `Could not spawn VMM ${options.vmmPath}: ${String(error)}`, {cause: error});
	}

	// Later errors (a failed kill) are not fatal: the exit is still reported by 'exit'.
	subprocess.on('error', error => {
		options.logger.error(`VMM(${subprocess.pid}) error: ${String(error)}`);
	});
	const vmm = new VmmProcess(subprocess, options);
	options.logger.debug(`Spawned VMM(${vmm.pid})`);
	return vmm;
}
