import {InvalidConfigError, VmSpawnError, VmwardenError} from '../../errors.js';
import {validateConfig} from '../config/validate.js';
import {capturesNeedDirectory, openCaptures, type VmCaptures} from '../console/captures.js';
import {descriptorShortage} from './descriptor-headroom.js';
import {openDescriptors} from './descriptors.js';
import type {VmmDriver} from './driver.js';
import type {VmEnvironment} from './environment.js';
import {spawnVmm} from './process.js';
import {spawnTurn} from './spawn/pace.js';
import type {DirectoryToMake} from './spawn/protocol.js';
import {SpawnFailure} from './spawn/spawner.js';
import {createTempDir, planTempDir, removeStaleTempDir, removeTempDir} from './temp-dir.js';
import type {RunningVmm} from './watch.js';
import type {Requester} from '../../types.js';

export interface LaunchInput {
	env: VmEnvironment;
	cid: number;
	payloadChannel: boolean;
	/** Whom the config's files are checked for (docs/security.md). */
	requester: Requester;
	/** The START came in a spawn turn its sender took: the launch's first step needs no other. */
	admitted?: boolean;
}

/** A spawned VMM and the temporary directory made for it: handed to the Running state, which owns both. */
export interface Launched {
	tempDir: string;
	vmm: RunningVmm;
	/** The outputs vmwarden reads, when the config captures any. */
	captures?: VmCaptures;
}

/** Errors that say the host ran out of something (space, descriptors, memory), not that a setting is wrong. */
const HOST_EXHAUSTED: ReadonlySet<string> = new Set(['ENOSPC', 'EDQUOT', 'EMFILE', 'ENFILE', 'ENOMEM']);

/** Errors that say a path is wrong (missing, not a directory, not ours to write). */
const PATH_ERRORS: ReadonlySet<string> = new Set(['ENOENT', 'ENOTDIR', 'EACCES', 'EPERM', 'ELOOP', 'EROFS', 'ENAMETOOLONG']);

function isPathError(error: SpawnFailure): boolean {
	return error.code !== undefined && PATH_ERRORS.has(error.code);
}

function isHostExhausted(error: unknown): boolean {
	const code = (error as NodeJS.ErrnoException | undefined)?.code;
	return code !== undefined && HOST_EXHAUSTED.has(code);
}

/**
 * A failure of something vmwarden called, as a typed error (anything untyped is a spawn failure).
 * A refusal whose cause is the host running out of room (a config file that could not be opened
 * for want of descriptors) is a spawn failure too: the config is not wrong, and the same start may
 * work later.
 */
export function asVmwardenError(error: unknown, vmmPath: string): VmwardenError {
	if (error instanceof InvalidConfigError && isHostExhausted(error.cause)) {
		return new VmSpawnError('VMM_SPAWN_FAILED', vmmPath, `Could not start the VM: the host ran out of resources: ${error.message}`, {cause: error});
	}

	return error instanceof VmwardenError ? error : new VmSpawnError('VMM_SPAWN_FAILED', vmmPath, `Could not start the VM: ${String(error)}`, {cause: error});
}

/**
 * The typed error for a temporary directory that could not be made: the host out of room (or its
 * spawner lost), or `tempRoot` wrong.
 */
function tempDirError(error: unknown, env: VmEnvironment): VmwardenError {
	const reason = error instanceof Error ? error.message : String(error);
	if (isHostExhausted(error) || (error instanceof SpawnFailure && !isPathError(error))) {
		// The host is out of room (or its spawner is lost), not the config wrong: the same start may
		// work later.
		return new VmSpawnError('VMM_SPAWN_FAILED', env.vmmPath, `Could not start the VM: no room for its temporary directory in ${env.tempRoot}: ${reason}`, {cause: error});
	}

	return new InvalidConfigError('tempRoot', `cannot create a temporary directory in ${env.tempRoot}: ${reason}`, {cause: error});
}

/** The spawner's failure behind a spawn's typed error. */
function spawnerFailure(error: unknown): SpawnFailure | undefined {
	return error instanceof VmSpawnError && error.cause instanceof SpawnFailure ? error.cause : undefined;
}

/** How many names a launch draws for its directory before it gives up (each taken one is a 1 in 62^6 chance). */
const NAME_DRAWS = 3;

/**
 * Whether the driver may read the VM's temporary directory once the VMM exited: `exitReason` is
 * promised the directory still exists (QEMU's driver reads its event trace there). Only a driver
 * that says `exitReadsTempDir: false` lets the spawner remove it with the exit.
 */
function exitReadsTempDir(driver: VmmDriver): boolean {
	return driver.exitReadsTempDir !== false;
}

/**
 * Validates, creates the 0700 temporary directory, builds the command, opens the descriptors and
 * spawns the VMM. The directory is made by the spawner with the spawn request, in the same round
 * trip, unless captured outputs need it before (their FIFOs). Whatever it made is released again
 * when a later step fails or `signal` says the VM was stopped meanwhile. Rejects with a
 * `VmwardenError`.
 */
export async function launchVmm(input: LaunchInput, signal: AbortSignal): Promise<Launched> {
	const {env, cid} = input;
	try {
		// A fleet started in one tick: each launch's synchronous work waits for its turn (unless the
		// start that led here was just given one).
		if (input.admitted !== true) {
			await spawnTurn();
		}

		validateConfig(env.config, env.filePolicy, input.requester);
		if (capturesNeedDirectory(env.config)) {
			return await launchInMadeDir(input, signal);
		}

		for (let draw = 1; ; draw++) {
			try {
				return await launchIn(input, signal, planTempDir(env.tempRoot, cid));
			} catch (error) {
				const failure = spawnerFailure(error);
				if (failure?.inDir !== true) {
					throw error;
				}

				if (failure.code !== 'EEXIST' || draw === NAME_DRAWS) {
					throw tempDirError(failure, env);
				}
			}
		}
	} catch (error) {
		// No capture will ever run: `console$` and `log$` subscribers learn it now.
		env.outputs.complete('console');
		env.outputs.complete('log');
		throw asVmwardenError(error, env.vmmPath);
	}
}

/** The launch when captured outputs need the directory first: it is made in a round trip of its own. */
async function launchInMadeDir(input: LaunchInput, signal: AbortSignal): Promise<Launched> {
	const {env} = input;
	let tempDir: string;
	try {
		tempDir = await createTempDir(env.tempRoot, input.cid);
	} catch (error) {
		throw tempDirError(error, env);
	}

	try {
		// The spawner's reply may come with other launches' replies: the synchronous work that follows
		// (descriptors, the command, the spawn request) waits for a turn again.
		await spawnTurn();
		return await launchIn(input, signal, tempDir);
	} catch (error) {
		await removeTempDir(tempDir, env.logger);
		throw error;
	}
}

/**
 * Opens the captures and descriptors, builds the command and spawns the VMM in `directory`: made
 * already (a path), or one the spawner makes with the spawn (and removes again when the spawn
 * fails). Releases what it made when it fails.
 */
async function launchIn(input: LaunchInput, signal: AbortSignal, directory: string | DirectoryToMake): Promise<Launched> {
	const {env, cid, payloadChannel, requester} = input;
	const planned = typeof directory === 'string' ? undefined : directory;
	const tempDir = typeof directory === 'string' ? directory : directory.path;
	const undo: Array<() => unknown> = [];
	try {
		const captures = await openCaptures({config: env.config, tempDir, filePolicy: env.filePolicy, requester, outputs: env.outputs, logger: env.logger});
		undo.push(() => {
			captures.dispose();
			void captures.closeWriteEnds();
		});
		const command = env.driver.command(captures.commandConfig, {cid, tempDir, controlSocket: env.controlSocket(tempDir), payloadChannel});
		const opened = openDescriptors(command.fds, env.filePolicy, requester);
		undo.push(() => {
			opened.close();
		});
		const channelFd = (role: 'failure' | 'payload') => command.fds.find(entry => entry.kind === 'channel' && entry.role === role)?.childFd;
		// Out of descriptors, a spawn fails in ways Node reports late or not at all: refuse it first.
		const shortage = descriptorShortage(1 + opened.stdio.filter(entry => entry === 'pipe').length);
		if (shortage !== undefined) {
			throw new VmSpawnError('VMM_SPAWN_FAILED', env.vmmPath, `Could not spawn VMM ${env.vmmPath}: ${shortage}`);
		}

		const vmm = await spawnVmm({
			vmmPath: env.vmmPath,
			environment: env.vmmEnvironment,
			args: command.args,
			descriptors: opened.stdio,
			failureFd: channelFd('failure'),
			payloadFd: channelFd('payload'),
			logger: env.logger,
			onDispose: () => {
				opened.close();
			},
			outputDir: planned === undefined ? tempDir : undefined,
			newOutputDir: planned,
			// Nothing of the host reads the directory after the exit: the spawner removes it with the exit.
			removeOutputDir: planned !== undefined && !exitReadsTempDir(env.driver),
			turnTaken: true,
		}).catch(async (error: unknown) => {
			// A spawner that refused the spawn removed what it made; one lost before it answered may
			// have made the directory, and nobody else would remove it. Removed from here, only if it
			// is provably ours: a new spawner may not start either (a host out of processes).
			if (planned !== undefined && spawnerFailure(error)?.lost === true) {
				const removal = await removeStaleTempDir(planned.path, cid);
				if (!removal.removed) {
					env.logger.error(`Error removing temporary directory ${planned.path}: ${removal.reason ?? 'unknown'}`);
				}
			}

			throw error;
		});
		if (planned !== undefined) {
			undo.push(async () => removeTempDir(planned.path, env.logger));
		}

		// Whatever fails from here on takes the VMM down first (undo runs in reverse).
		undo.push(async () => {
			vmm.kill('SIGKILL');
			await vmm.terminated;
			vmm.dispose();
		});
		// The VMM holds the write ends now: the captures end when it does.
		await captures.closeWriteEnds();
		if (signal.aborted) {
			// The VM actor was stopped while spawning (or while the captures closed): the VMM goes with it.
			throw new VmSpawnError('VMM_SPAWN_FAILED', env.vmmPath, 'the VM was stopped while starting');
		}
		env.logger.info(`Spawned ${env.driver.name}(${vmm.pid})`);
		return {tempDir, vmm, captures};
	} catch (error) {
		for (const step of undo.reverse()) {
			await step();
		}

		throw error;
	}
}
