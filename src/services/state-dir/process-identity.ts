import {readFileSync} from 'node:fs';
import {open} from 'node:fs/promises';
import {setTimeout as delay} from 'node:timers/promises';

/**
 * A process as the kernel knows it: a PID alone may be reused by an unrelated process after the
 * first one died; the PID with its start time (field 22 of `/proc/PID/stat`, in clock ticks since
 * boot) names one process for the life of the machine.
 */
export interface ProcessIdentity {
	pid: number;
	/** Field 22 of `/proc/PID/stat`, kept as the kernel's decimal text. */
	startTime: string;
}

/** What `/proc/PID/stat` says about a process that exists. */
export interface ProcessStat {
	pid: number;
	/** Field 3: `R`, `S`, `D`, `Z` (zombie), `X` (dead), ... */
	state: string;
	/** Field 4. */
	parentPid: number;
	/** Field 22. */
	startTime: string;
}

/**
 * Reads `/proc/PID/stat`; `undefined` when there is no such process. The command name (field 2)
 * may hold spaces and parentheses, so fields are counted from the last `)`.
 */
export function readProcessStat(pid: number): ProcessStat | undefined {
	if (!isPid(pid)) {
		return undefined;
	}

	try {
		return parseProcessStat(pid, readFileSync(`/proc/${pid}/stat`, 'utf8'));
	} catch {
		return undefined;
	}
}

/** `readProcessStat` without blocking the event loop. */
export async function readProcessStatAsync(pid: number): Promise<ProcessStat | undefined> {
	if (!isPid(pid)) {
		return undefined;
	}

	const text = await readProcFile(pid, 'stat', 4096);
	return text === undefined ? undefined : parseProcessStat(pid, text.toString('utf8'));
}

function parseProcessStat(pid: number, text: string): ProcessStat | undefined {
	// After the command name: field 3 (state) is at index 0, field 22 (starttime) at index 19.
	const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
	const [state, parentPid, startTime] = [fields[0], fields[1], fields[19]];
	if (state === undefined || parentPid === undefined || startTime === undefined || !/^\d+$/.test(startTime)) {
		return undefined;
	}

	return {pid, state, parentPid: Number(parentPid), startTime};
}

/** A process's command line, one string per argument (at most `limit` bytes read); `undefined` when gone. */
export async function readProcessArguments(pid: number, limit = 128 * 1024): Promise<string[] | undefined> {
	const bytes = isPid(pid) ? await readProcFile(pid, 'cmdline', limit) : undefined;
	return bytes?.toString('utf8').split('\0').filter(argument => argument !== '');
}

/** A process's effective uid (`Uid:` line of `/proc/PID/status`); `undefined` when gone. */
export async function readProcessEffectiveUid(pid: number): Promise<number | undefined> {
	const bytes = isPid(pid) ? await readProcFile(pid, 'status', 16 * 1024) : undefined;
	const match = bytes === undefined ? null : /^Uid:\s+\d+\s+(\d+)/m.exec(bytes.toString('utf8'));
	return match === null ? undefined : Number(match[1]);
}

/** Reads at most `limit` bytes of `/proc/PID/NAME`, asynchronously; `undefined` when unreadable. */
async function readProcFile(pid: number, name: string, limit: number): Promise<Buffer | undefined> {
	let handle;
	try {
		handle = await open(`/proc/${pid}/${name}`, 'r');
	} catch {
		return undefined;
	}

	try {
		const buffer = Buffer.alloc(limit);
		let length = 0;
		for (let read = -1; read !== 0 && length < limit;) {
			({bytesRead: read} = await handle.read(buffer, length, limit - length, null));
			length += read;
		}

		return buffer.subarray(0, length);
	} catch {
		return undefined;
	} finally {
		await handle.close();
	}
}

function isPid(pid: number): boolean {
	return Number.isSafeInteger(pid) && pid > 0;
}

/** The identity of a running process, or `undefined` when it is gone (or only a zombie). */
export function processIdentity(pid: number): ProcessIdentity | undefined {
	const stat = readProcessStat(pid);
	return stat === undefined || isDeadState(stat.state) ? undefined : {pid, startTime: stat.startTime};
}

/** Whether the very process `identity` names still runs: same PID, same start time, not a zombie. */
export function isProcessRunning(identity: ProcessIdentity): boolean {
	const stat = readProcessStat(identity.pid);
	return stat !== undefined && !isDeadState(stat.state) && stat.startTime === identity.startTime;
}

/** What `killProcess` found and did. */
export type KillOutcome =
	/** The process was running and got the signal. */
	| 'signalled'
	/** No process has that PID any more (or only its zombie). */
	| 'gone'
	/** A different process now has that PID: it was left alone. */
	| 'pid-reused';

/**
 * Sends `signal` to the process only if it is still the one `identity` names. Node has no pidfd,
 * so a window of microseconds remains between the check and `kill(2)`; PIDs are handed out in
 * rising order and wrap only after the whole PID space, so the PID would have to be freed and
 * reused within that window.
 */
export function killProcess(identity: ProcessIdentity, signal: NodeJS.Signals = 'SIGKILL'): KillOutcome {
	const stat = readProcessStat(identity.pid);
	if (stat === undefined || isDeadState(stat.state)) {
		return 'gone';
	}

	if (stat.startTime !== identity.startTime) {
		return 'pid-reused';
	}

	try {
		process.kill(identity.pid, signal);
	} catch (error) {
		if ((error as NodeJS.ErrnoException).code === 'ESRCH') {
			return 'gone';
		}

		throw error;
	}

	return 'signalled';
}

/**
 * Waits until the process `identity` names no longer runs (a zombie counts as gone: it runs no
 * code and holds no CID). Resolves true when it is gone, false after `timeoutMs`.
 */
export async function waitForProcessExit(identity: ProcessIdentity, {timeoutMs = 5000, intervalMs = 10}: {timeoutMs?: number; intervalMs?: number} = {}): Promise<boolean> {
	const deadline = Date.now() + timeoutMs;
	const running = async () => {
		const stat = await readProcessStatAsync(identity.pid);
		return stat !== undefined && !isDeadState(stat.state) && stat.startTime === identity.startTime;
	};

	while (await running()) {
		if (Date.now() >= deadline) {
			return false;
		}

		await delay(intervalMs);
	}

	return true;
}

/** Whether a `/proc/PID/stat` state is a zombie or dead: it runs no code any more. */
export function isDeadState(state: string): boolean {
	return state === 'Z' || state === 'X' || state === 'x';
}
