import {spawnTurn} from './pace.js';
import type {ChildEnvironment} from './protocol.js';
import {spawner, SpawnFailure, type CommandResult} from './spawner.js';

export interface RunCommandOptions {
	/** The command's whole environment: nothing of the host's is added. */
	environment: ChildEnvironment;
	/** SIGTERM after this long, SIGKILL a second later; the result then has `timedOut`. */
	timeoutMs: number;
	/** How much of its stderr is kept. Default 4096 bytes. */
	maxOutputBytes?: number;
	/** Keep its stdout, up to this many bytes: one more ends it (`stdoutOverflow`). Default: none kept. */
	maxStdoutBytes?: number;
	/** Ends the command early (SIGTERM, then SIGKILL) when it aborts: nobody waits for it any more. */
	signal?: AbortSignal;
}

/**
 * Runs a short command (`crosvm stop SOCKET`) from the spawner process: no shell, stdin closed,
 * stdout closed unless `maxStdoutBytes` asks for it, the end of stderr kept. The host's event loop never waits for its fork and exec, and a
 * thousand stops at once cost the host a message each. Resolves with how it ended; rejects with
 * `SpawnFailure` only when the spawner process itself is lost.
 */
export async function runCommand(file: string, args: string[], options: RunCommandOptions): Promise<CommandResult> {
	const {environment: env, timeoutMs, maxOutputBytes = 4096, maxStdoutBytes, signal} = options;
	const result = await spawner.run(file, args, {env, timeoutMs, maxOutputBytes, maxStdoutBytes, signal});
	// Results come in batches when a fleet stops: what each caller does next waits for its turn.
	await spawnTurn();
	return result;
}

/**
 * How a command that was started and did not succeed ended, for an error message: `timed out after
 * N ms`, `was cancelled` (when the caller says its abort ended it), `was killed by SIGNAL` or
 * `exited with N`. Whether it could be started at all is the caller's to say first (`failed`).
 */
export function howCommandEnded(result: CommandResult, timeoutMs: number, cancelled = false): string {
	return result.timedOut ? `timed out after ${timeoutMs} ms` : cancelled ? 'was cancelled' : result.code === null ? `was killed by ${result.signal ?? 'a signal'}` : `exited with ${result.code}`;
}

export {SpawnFailure, type CommandResult};
