import {join} from 'node:path';
import {StopRequestError} from '../../errors.js';
import {crosvmControl} from './control.js';
import {crosvmCommand, type CrosvmDialect, type CrosvmTarget} from './command.js';
import {DeathReason} from '../death/reason.js';
import type {VmmDriver, VmmExit, VmmStopContext} from '../vmm/driver.js';
import {howCommandEnded, runCommand} from '../vmm/spawn/command.js';

export interface CrosvmDriverOptions {
	/** Default `current`. */
	dialect?: CrosvmDialect;
	/** For dialect `current`; default the host's. */
	target?: CrosvmTarget;
	/**
	 * How long `crosvm stop` may take before it is killed and the request counts as failed: a
	 * wedged VM never answers. Default 10 s.
	 */
	stopRequestTimeoutMs?: number;
	/** How long `crosvm suspend|resume|balloon|balloon_stats` may take. Default 10 s. */
	controlTimeoutMs?: number;
}

/** crosvm's `--extended-status` exit codes (docs/command-line.md, "Exit status"). */
const EXIT_REASONS: ReadonlyMap<number, DeathReason> = new Map<number, DeathReason>([
	[0, DeathReason.SHUTDOWN],
	[1, DeathReason.ERROR],
	[32, DeathReason.REBOOT],
	[33, DeathReason.CRASH],
	[34, DeathReason.GUEST_PANIC],
	[36, DeathReason.WATCHDOG_REBOOT],
]);

/** The death reason crosvm's exit alone gives (before failure texts and hang-ups are considered). */
export function crosvmExitReason(exit: VmmExit): DeathReason {
	if (exit.signal !== undefined) {
		return DeathReason.KILLED;
	}

	return (exit.exitCode === undefined ? undefined : EXIT_REASONS.get(exit.exitCode)) ?? DeathReason.UNKNOWN;
}

async function requestStop(context: VmmStopContext, timeoutMs: number): Promise<void> {
	if (context.controlSocket === undefined) {
		throw new StopRequestError(`cannot stop crosvm (pid ${context.pid}) gracefully: it has no control socket`, {});
	}

	// From the spawner process: a thousand stops at once never wait on a fork in the host's event
	// loop, a stop that cannot be spawned (EMFILE) is a failed request, retried until the timeout, and
	// a stop whose VM died meanwhile (the signal aborts) is ended rather than left running.
	const result = await runCommand(context.vmmPath, ['stop', context.controlSocket], {environment: context.environment, timeoutMs, signal: context.signal});
	if (result.code === 0) {
		return;
	}

	const stderr = result.stderr.trim();
	const how = result.failed ?? howCommandEnded(result, timeoutMs);
	throw new StopRequestError(`${context.vmmPath} stop ${context.controlSocket} ${how}${stderr ? `: ${stderr}` : ''}`, {exitCode: result.code ?? undefined, stderr});
}

/**
 * The crosvm driver: `crosvm run` with the command line of `crosvmCommand` plus a control socket
 * in the VM's temporary directory, graceful stop through `crosvm stop`, suspend, resume and the
 * balloon through the same socket (`crosvm suspend|resume|balloon|balloon_stats`), and death
 * reasons from crosvm's `--extended-status` exit codes.
 */
export function createCrosvmDriver(options: CrosvmDriverOptions = {}): VmmDriver {
	const {dialect, target, stopRequestTimeoutMs = 10_000, controlTimeoutMs = 10_000} = options;
	return {
		...crosvmControl(controlTimeoutMs),
		name: 'crosvm',
		defaultPath: 'crosvm',
		command(config, commandOptions) {
			return crosvmCommand(config, {
				cid: commandOptions.cid,
				dialect,
				target,
				controlSocket: commandOptions.controlSocket ?? join(commandOptions.tempDir, 'crosvm.sock'),
				payloadChannel: commandOptions.payloadChannel,
			});
		},
		async requestStop(context) {
			await requestStop(context, stopRequestTimeoutMs);
		},
		exitReason(exit) {
			return crosvmExitReason(exit);
		},
		// The exit status says everything: the directory can go with the exit.
		exitReadsTempDir: false,
	};
}

/** The crosvm driver with defaults: dialect `current`, the host's build. */
export const crosvmDriver: VmmDriver = createCrosvmDriver();
