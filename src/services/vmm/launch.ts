import {InvalidConfigError, VmSpawnError, VmwardenError} from '../../errors.js';
import {validateConfig} from '../config/validate.js';
import {openCaptures, type VmCaptures} from '../console/captures.js';
import {descriptorShortage} from './descriptor-headroom.js';
import {openDescriptors} from './descriptors.js';
import type {VmEnvironment} from './environment.js';
import {spawnVmm} from './process.js';
import {spawnTurn} from './spawn/pace.js';
import {SpawnFailure} from './spawn/spawner.js';
import {createTempDir, removeTempDir} from './temp-dir.js';
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
 * Validates, creates the 0700 temporary directory, builds the command, opens the descriptors and
 * spawns the VMM. Whatever it made is released again when a later step fails or `signal` says the
 * VM was stopped meanwhile. Rejects with a `VmwardenError`.
 */
export async function launchVmm(input: LaunchInput, signal: AbortSignal): Promise<Launched> {
	const {env, cid, payloadChannel, requester} = input;
	const undo: Array<() => unknown> = [];
	try {
		// A fleet started in one tick: each launch's synchronous work waits for its turn (unless the
		// start that led here was just given one).
		if (input.admitted !== true) {
			await spawnTurn();
		}

		validateConfig(env.config, env.filePolicy, requester);
		let tempDir: string;
		try {
			tempDir = await createTempDir(env.tempRoot, cid);
		} catch (error) {
			if (isHostExhausted(error) || (error instanceof SpawnFailure && !isPathError(error))) {
				// The host is out of room (or its spawner is lost), not the config wrong: the same
				// start may work later.
				throw new VmSpawnError('VMM_SPAWN_FAILED', env.vmmPath, `Could not start the VM: no room for its temporary directory in ${env.tempRoot}: ${error instanceof Error ? error.message : String(error)}`, {cause: error});
			}

			throw new InvalidConfigError('tempRoot', `cannot create a temporary directory in ${env.tempRoot}: ${error instanceof Error ? error.message : String(error)}`, {cause: error});
		}

		undo.push(async () => removeTempDir(tempDir, env.logger));
		// The spawner's reply may come with other launches' replies: the synchronous work that follows
		// (descriptors, the command, the spawn request) waits for a turn again.
		await spawnTurn();
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
			args: command.args,
			descriptors: opened.stdio,
			failureFd: channelFd('failure'),
			payloadFd: channelFd('payload'),
			logger: env.logger,
			onDispose: () => {
				opened.close();
			},
			outputDir: tempDir,
			turnTaken: true,
		});
		if (signal.aborted) {
			// The VM actor was stopped while spawning: take the VMM down with it.
			vmm.kill('SIGKILL');
			await vmm.terminated;
			vmm.dispose();
			throw new VmSpawnError('VMM_SPAWN_FAILED', env.vmmPath, 'the VM was stopped while starting');
		}

		// The VMM holds the write ends now: the captures end when it does.
		await captures.closeWriteEnds();
		env.logger.info(`Spawned ${env.driver.name}(${vmm.pid})`);
		return {tempDir, vmm, captures};
	} catch (error) {
		for (const step of undo.reverse()) {
			await step();
		}

		// No capture will ever run: `console$` and `log$` subscribers learn it now.
		env.outputs.complete('console');
		env.outputs.complete('log');

		throw asVmwardenError(error, env.vmmPath);
	}
}
