import {accessSync, constants, existsSync, statSync, type Stats} from 'node:fs';
import {mkdtemp, rm} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type {Readable} from 'node:stream';
import type winston from 'winston';
import type {VmmExit} from './driver.js';
import {MAX_FAILURE_TEXT_BYTES, type FailureChannelOptions, type FailureText} from '../death/failure-channel.js';
import {settledWithin} from './stream-settled.js';
import {VmSpawnError} from '../../errors.js';
import {SpawnFailure, spawner, type SpawnedChild} from './spawn/spawner.js';
import type {AtExit, DirectoryToMake, OutputFile, StdioEntry} from './spawn/protocol.js';
import {spawnTurn} from './spawn/pace.js';
import type {VmmEnvironment} from './vmm-environment.js';

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

/** What is known once the VMM settled: its failure text, and whether its directory is gone already. */
export interface SettledVmm extends FailureText {
	/** The spawner removed the output directory with the exit (`removeOutputDir`): nothing is left to remove. */
	dirRemoved?: boolean;
}

/** One descriptor the VMM inherits at 3, 4, ...: an open fd, or `'pipe'` for a channel vmwarden reads. */
export type ChildDescriptor = number | 'pipe';

export interface SpawnVmmOptions {
	/** The VMM as the caller named it: a path, or a name looked up on PATH. */
	vmmPath: string;
	args: string[];
	/** The VMM's whole environment (nothing of the host's is added). */
	environment: VmmEnvironment;
	/** Descriptors for the child's fds 3, 4, ... in order. */
	descriptors: ChildDescriptor[];
	/** The child fd of the failure channel, if any. */
	failureFd: number | undefined;
	/** The child fd of the payload channel, if any. */
	payloadFd: number | undefined;
	logger: winston.Logger;
	/**
	 * Closes the descriptors vmwarden opened for the VMM. Called as soon as the VMM holds its own
	 * copies (or the spawn failed): the host keeps no kernel, disk or serial file open for a VM.
	 */
	onDispose?: () => void;
	failureChannel?: FailureChannelOptions;
	/**
	 * Where the VMM's stderr and failure text go, as files read (bounded) after the exit: the VM's
	 * private temporary directory. Without it spawnVmm makes a private directory of its own and
	 * removes it on dispose.
	 */
	outputDir?: string;
	/**
	 * The output directory, not there yet: the spawner makes it with the spawn request (one round
	 * trip for both; removed again when the spawn fails). Takes the place of `outputDir`.
	 */
	newOutputDir?: DirectoryToMake;
	/**
	 * The spawner removes the output directory once the VMM is gone and its outputs are read, with
	 * the same message: for a caller that needs nothing in it after the exit.
	 */
	removeOutputDir?: boolean;
	/**
	 * The caller took a spawn turn (./spawn/pace.ts) for its own synchronous work right before, in
	 * this event-loop turn: spawnVmm goes on in it rather than queueing for another.
	 */
	turnTaken?: boolean;
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
		// One stat serves the checks below: each system call is paid on every start.
		const stats = statSync(candidate, {throwIfNoEntry: false});
		if (stats?.isFile() !== true) {
			continue;
		}

		try {
			accessSync(candidate, constants.X_OK);
		} catch {
			found ??= candidate;
			continue;
		}

		checkCredentialsKept(candidate, stats, vmmPath);
		return candidate;
	}

	if (found !== undefined) {
		throw new VmSpawnError('VMM_NOT_EXECUTABLE', vmmPath, `VMM ${found} is not executable`);
	}

	throw new VmSpawnError('VMM_NOT_FOUND', vmmPath, vmmPath.includes('/') ? `VMM ${vmmPath} does not exist` : `VMM ${vmmPath} not found on PATH`);
}

// The set-user-ID and set-group-ID bits of a file's mode (stat(2)).
const SET_USER_ID = 0o4000;
const SET_GROUP_ID = 0o2000;

/**
 * Refuses a set-user-ID or set-group-ID VMM that would run with other credentials than this
 * process: the kernel clears the parent-death signal when an exec changes the credentials
 * (prctl(2), PR_SET_PDEATHSIG), so such a VMM would outlive a host killed by SIGKILL. A binary of
 * this process's own user and group, or a host running as that user, keeps the signal.
 */
function checkCredentialsKept(file: string, {mode, uid, gid}: Stats, vmmPath: string): void {
	const changesUser = (mode & SET_USER_ID) !== 0 && uid !== process.geteuid?.();
	const changesGroup = (mode & SET_GROUP_ID) !== 0 && gid !== process.getegid?.();
	if (changesUser || changesGroup) {
		throw new VmSpawnError('VMM_PRIVILEGED', vmmPath, `VMM ${file} is set-${changesUser ? 'user' : 'group'}-ID: it would run with other credentials, and the kernel would drop the parent-death signal that ends it with this process; install it without the bit, or run the host as its ${changesUser ? 'owner' : 'group'}`);
	}
}

let warnedNoSetpriv = false;

/**
 * The command that runs the VMM so it receives SIGKILL when its parent, the spawner process, dies,
 * even by SIGKILL: `setpriv --pdeathsig KILL -- VMM ARGS`. setpriv execs, so the pid is the VMM's.
 * Without setpriv the VMM is spawned directly, and only the spawner, which SIGKILLs its children
 * when the host goes, protects it; this is logged once per process.
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
	/** The VMM's binary as it was found and spawned (`vmmPath` resolved): what its commands run too. */
	readonly file: string;
	/** Settles once the VMM exited (never rejects). */
	readonly terminated: Promise<VmmTermination>;
	/** The payload channel, when the VM has one. */
	readonly payloadStream: Readable | undefined;
	readonly #child: SpawnedChild;
	/** The directory spawnVmm made itself (removed on dispose), when the caller gave none. */
	readonly #ownDir: string | undefined;
	/** Whether the spawner removes the output directory once the VMM settled. */
	readonly #removesDir: boolean;
	#stderrTail = '';
	#termination: VmmTermination | undefined;
	#disposed = false;

	constructor(child: SpawnedChild, file: string, ownDir: string | undefined, options: SpawnVmmOptions) {
		this.#child = child;
		this.file = file;
		this.#ownDir = ownDir;
		this.#removesDir = options.removeOutputDir === true;
		this.pid = child.pid;
		this.terminated = child.exited.then(async ({code, signal, lost}) => {
			// Exits arrive in batches when a fleet stops: what follows each one (the death decision,
			// the cleanup) waits for its turn, this VMM's.
			await spawnTurn(this);
			this.#termination = {
				exit: {exitCode: code ?? undefined, signal: signal ?? undefined},
				waitError: lost ?? (code === null && signal === null ? 'the VMM exited without a status' : undefined),
			};
			return this.#termination;
		});
		this.payloadStream = options.payloadFd === undefined ? undefined : child.pipes.get(options.payloadFd);
		// Whatever else was a pipe is drained, never read: a VMM must not block on it.
		for (const [fd, pipe] of child.pipes) {
			if (fd !== options.payloadFd) {
				pipe.resume();
			}
		}
	}

	/**
	 * Resolves with the failure text once the VMM exited and its payload channel was closed, or
	 * `graceMs` after the exit when some other process keeps that channel open (a report written
	 * just before the exit still counts). The spawner reads the failure text and the stderr tail
	 * from their files then, bounded (whatever the VMM wrote is already there), and removes the
	 * directory when asked to, all in the message that follows the channel's end: the host makes no
	 * round trip of its own for a death.
	 */
	async settled(graceMs: number): Promise<SettledVmm> {
		// The spawner's answer comes after the pipes' end: everything before it was pushed to the
		// reader already, and a flowing reader's 'end' (nextTick) runs before this continuation.
		await Promise.all([this.terminated, settledWithin(this.terminated, graceMs, finish => {
			void this.#child.readBack.then(finish);
			return () => undefined;
		})]);
		// Past the grace (or answered already, when this does nothing): whatever pipe is still open.
		this.#child.settleNow();
		const readBack = await this.#child.readBack;
		// Lost with the spawner, nothing was read: the exit's waitError says why.
		this.#stderrTail = readBack?.stderrTail ?? '';
		return {...readBack?.failure ?? {text: '', truncated: false}, dirRemoved: readBack !== undefined && this.#removesDir && readBack.removeError === undefined};
	}

	get hasExited(): boolean {
		return this.#termination !== undefined;
	}

	/** The last bytes the VMM wrote to stderr (read once it has settled). */
	get stderrTail(): string {
		return this.#stderrTail;
	}

	/** Sends a signal if the VMM still runs; never throws. Returns whether a signal was sent. */
	kill(signal: NodeJS.Signals = 'SIGKILL'): boolean {
		if (this.hasExited) {
			return false;
		}

		return this.#child.kill(signal);
	}

	/** Closes every stream to the VMM and what vmwarden made for it. Idempotent. */
	dispose(): void {
		if (this.#disposed) {
			return;
		}

		this.#disposed = true;
		for (const pipe of this.#child.pipes.values()) {
			pipe.destroy();
		}

		if (this.#ownDir !== undefined) {
			// Private to this VMM and read already: nobody waits for it to go.
			void rm(this.#ownDir, {recursive: true, force: true}).catch(() => undefined);
		}
	}

	toJSON(): {pid: number; exited: boolean} {
		return {pid: this.pid, exited: this.hasExited};
	}
}

/** The typed error for a spawn the operating system refused. */
function spawnError(vmmPath: string, error: unknown): VmSpawnError {
	const code = error instanceof SpawnFailure ? error.code : (error as NodeJS.ErrnoException).code;
	const reason = error instanceof Error ? error.message : String(error);
	switch (code) {
		case 'ENOENT': {
			return new VmSpawnError('VMM_NOT_FOUND', vmmPath, `VMM ${vmmPath} does not exist`, {cause: error});
		}

		case 'EACCES': {
			return new VmSpawnError('VMM_NOT_EXECUTABLE', vmmPath, `VMM ${vmmPath} is not executable`, {cause: error});
		}

		default: {
			return new VmSpawnError('VMM_SPAWN_FAILED', vmmPath, `Could not spawn VMM ${vmmPath}: ${reason}`, {cause: error});
		}
	}
}

/**
 * Spawns the VMM (an argument array, no shell) behind the parent-death wrapper, from the spawner
 * thread so the host's event loop never waits for a fork and exec, and resolves once the operating
 * system started it. stderr and the failure channel go to files; only the payload channel stays a
 * pipe. The host closes its copies of every descriptor the VMM inherited as soon as it runs. Its
 * synchronous work waits for a turn (./spawn/pace.ts), so a fleet started at once never blocks.
 * Rejects with `VmSpawnError`, having released everything it made and called `onDispose`.
 */
export async function spawnVmm(options: SpawnVmmOptions): Promise<VmmProcess> {
	let ownDir: string | undefined;
	let child: SpawnedChild;
	let file: string;
	try {
		if (options.turnTaken !== true) {
			await spawnTurn();
		}

		file = resolveVmmPath(options.vmmPath);
		const command = parentDeathCommand(file, options.args, options.logger, options.setprivPath);
		const directory = options.newOutputDir?.path ?? options.outputDir ?? (ownDir = await mkdtemp(path.join(os.tmpdir(), 'vmwarden-vmm-')));
		const stderr = {fd: 2, path: path.join(directory, 'vmm.stderr')};
		const failure = options.failureFd === undefined ? undefined : {fd: options.failureFd, path: path.join(directory, 'vmm.failure')};
		const stdio: StdioEntry[] = ['ignore', 'ignore', 'ignore', ...options.descriptors];
		const files: OutputFile[] = failure === undefined ? [stderr] : [stderr, failure];
		const atExit: AtExit = {
			failure: failure === undefined ? undefined : {path: failure.path, maxBytes: options.failureChannel?.maxBytes ?? MAX_FAILURE_TEXT_BYTES},
			stderr: {path: stderr.path, maxBytes: STDERR_TAIL_BYTES},
			removeDir: options.removeOutputDir === true ? directory : undefined,
		};
		const relay = stdio.flatMap((entry, fd) => (entry === 'pipe' && !files.some(output => output.fd === fd) ? [fd] : []));
		options.logger.debug(`Running ${[command.file, ...command.args].join(' ')}`);
		child = await spawner.spawn(command.file, command.args, options.environment, stdio, relay, files, {dir: options.newOutputDir, atExit});
	} catch (error) {
		options.onDispose?.();
		if (ownDir !== undefined) {
			await rm(ownDir, {recursive: true, force: true});
		}

		throw error instanceof VmSpawnError ? error : spawnError(options.vmmPath, error);
	}

	// The VMM holds its own copies now: the host keeps none of them.
	options.onDispose?.();
	// Replies arrive in batches when a fleet starts: what follows each one (the VM entering Running)
	// waits for its turn.
	await spawnTurn();

	const vmm = new VmmProcess(child, file, ownDir, options);
	options.logger.debug(`Spawned VMM(${vmm.pid})`);
	return vmm;
}
