import {stat} from 'node:fs/promises';
import {setTimeout as delay} from 'node:timers/promises';
import type {VmmEnvironment} from '../vmm/vmm-environment.js';
import {howCommandEnded, runCommand, type CommandResult} from '../vmm/spawn/command.js';
import {VmControlError, type VmControlOperation} from '../../errors.js';
import {MAX_BALLOON_STATS_BYTES, parseCrosvmBalloonStats, type BalloonStats} from '../control/balloon.js';
import type {VmmControlContext} from '../vmm/driver.js';

/** How a crosvm control command failed, for the caller's own error type. */
export interface ControlFailure {
	message: string;
	exitCode: number | undefined;
	stderr: string;
	cause: unknown;
}

/** The most stderr a failure keeps. */
const MAX_STDERR_CHARS = 1024;

/**
 * Runs `crosvm SUBCOMMAND ... SOCKET` (argv, no shell) from the spawner process, as `crosvm stop`
 * is, and resolves with its stdout, at most `maxBuffer` bytes: a host asking a whole fleet for its
 * balloon statistics at once never waits on a fork in its event loop. A command that fails, is
 * killed after `timeoutMs` (a wedged VMM never answers) or prints more is handed to `fail`, whose
 * error is thrown. `signal` ends the command early (SIGTERM, then SIGKILL): once nobody waits for
 * its answer it must not outlive the VM it talks to. Its environment is `environment` alone, the
 * VM's `vmmEnvironment`.
 */
export async function runCrosvmControl(vmmPath: string, args: string[], timeoutMs: number, fail: (failure: ControlFailure) => Error, {environment, maxBuffer = 64 * 1024, signal}: {environment: VmmEnvironment; maxBuffer?: number; signal?: AbortSignal}): Promise<string> {
	const what = `${vmmPath} ${args.join(' ')}`;
	let result: CommandResult;
	try {
		result = await runCommand(vmmPath, args, {environment, timeoutMs, maxStdoutBytes: maxBuffer, signal});
	} catch (error) {
		// The spawner process itself was lost: whether the command ran is unknown.
		throw fail({message: `${what} got no answer: ${error instanceof Error ? error.message : String(error)}`, exitCode: undefined, stderr: '', cause: error});
	}

	if (result.code === 0 && !result.stdoutOverflow && result.stdout !== undefined) {
		return result.stdout;
	}

	const stderr = result.stderr.trim().slice(-MAX_STDERR_CHARS);
	// Cancelled: ended by a signal after its caller gave up (one that exited by itself says how).
	const cancelled = signal?.aborted === true && result.code === null;
	const how = result.failed === undefined ? (result.stdoutOverflow ? `printed more than ${maxBuffer} bytes` : howCommandEnded(result, timeoutMs, cancelled)) : `could not be started: ${result.failed}`;
	throw fail({message: `${what} ${how}${stderr ? `: ${stderr}` : ''}`, exitCode: result.code ?? undefined, stderr, cause: undefined});
}

function socketOf(context: VmmControlContext, operation: VmControlOperation): string {
	if (context.controlSocket === undefined) {
		throw new VmControlError(operation, `cannot ${operation} crosvm (pid ${context.pid}): it has no control socket`);
	}

	return context.controlSocket;
}

/** How often a control socket that is not there yet is looked for. */
const SOCKET_POLL_MS = 20;

/**
 * Waits until crosvm created its control socket: a request right after `start()` would otherwise
 * fail with ENOENT, as crosvm binds the socket while it sets the VM up. Gives up after `timeoutMs`.
 */
async function socketReady(socket: string, operation: VmControlOperation, timeoutMs: number): Promise<void> {
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		const isSocket = await stat(socket).then(stats => stats.isSocket(), () => false);
		if (isSocket) {
			return;
		}

		if (Date.now() + SOCKET_POLL_MS > deadline) {
			throw new VmControlError(operation, `crosvm's control socket ${socket} did not appear within ${timeoutMs} ms`);
		}

		await delay(SOCKET_POLL_MS);
	}
}

function controlError(operation: VmControlOperation) {
	return ({message, exitCode, stderr, cause}: ControlFailure) => new VmControlError(operation, message, {exitCode, stderr}, {cause});
}

/**
 * crosvm's control subcommands (src/crosvm/cmdline.rs at f1e797a68): `suspend` and `resume` pause
 * and resume the vCPUs (`VmRequest::SuspendVcpus`/`ResumeVcpus`), `balloon SIZE` adjusts the
 * balloon (without `--wait`, which the 2022 build lacks), `balloon_stats` prints the statistics.
 */
export function crosvmControl(timeoutMs: number) {
	const run = async (context: VmmControlContext, operation: VmControlOperation, args: string[], maxBuffer?: number) => {
		const socket = socketOf(context, operation);
		await socketReady(socket, operation, timeoutMs);
		return runCrosvmControl(context.vmmPath, [...args, socket], timeoutMs, controlError(operation), {environment: context.environment, maxBuffer, signal: context.signal});
	};
	return {
		async suspend(context: VmmControlContext): Promise<void> {
			await run(context, 'suspend', ['suspend']);
		},
		async resume(context: VmmControlContext): Promise<void> {
			await run(context, 'resume', ['resume']);
		},
		async setBalloon(context: VmmControlContext, bytes: number): Promise<void> {
			await run(context, 'setBalloon', ['balloon', String(bytes)]);
		},
		async balloonStats(context: VmmControlContext): Promise<BalloonStats> {
			return parseCrosvmBalloonStats(await run(context, 'balloonStats', ['balloon_stats'], MAX_BALLOON_STATS_BYTES));
		},
	};
}
