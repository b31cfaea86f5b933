import {join} from 'node:path';
import {DeathReason} from '../death/reason.js';
import {readSmallFileAsync} from '../state-dir/files.js';
import {qemuCommand, SHUTDOWN_TRACE_EVENT, type QemuAccelerator} from './command.js';
import {qmpExecute} from './qmp-client.js';
import type {VmmControlContext, VmmDriver, VmmExit, VmmStopContext} from '../vmm/driver.js';
import {isByteCount, type BalloonStats} from '../control/balloon.js';
import {InvalidConfigError, StopRequestError, VmControlError, VmControlUnsupportedError, type VmControlOperation} from '../../errors.js';

export interface QemuDriverOptions {
	/** Tried in order. Default `['kvm', 'tcg']`: KVM where it works, else software emulation. */
	accelerators?: QemuAccelerator[];
	/** Gives the guest a vhost-vsock device with its CID (needs `/dev/vhost-vsock`). Default false. */
	vsock?: boolean;
	/** Appended to every command line (for example `['-cpu', 'max']`). */
	extraArgs?: string[];
	/** How long the QMP power-down request may take. Default 10 s. */
	stopRequestTimeoutMs?: number;
	/** How long a QMP `stop` or `cont` (suspend, resume) may take. Default 10 s. */
	controlTimeoutMs?: number;
}

/** The file in the VM's temporary directory that QEMU traces its shutdown request to. */
export const QEMU_EVENT_LOG = 'qemu-events.log';

/**
 * QEMU's `ShutdownCause` numbers (qapi/run-state.json), as `qemu_system_shutdown_request` traces
 * them, and what each means for the VM.
 */
const SHUTDOWN_CAUSES: ReadonlyMap<number, DeathReason> = new Map<number, DeathReason>([
	// host-error
	[1, DeathReason.CRASH],
	// host-qmp-quit: someone on QMP stopped it, like `crosvm stop`.
	[2, DeathReason.SHUTDOWN],
	// host-qmp-system-reset
	[3, DeathReason.REBOOT],
	// host-signal
	[4, DeathReason.KILLED],
	// host-ui
	[5, DeathReason.SHUTDOWN],
	// guest-shutdown
	[6, DeathReason.SHUTDOWN],
	// guest-reset
	[7, DeathReason.REBOOT],
	// guest-panic (pvpanic, with -action panic=shutdown)
	[8, DeathReason.GUEST_PANIC],
]);

/** Signals that mean QEMU itself crashed rather than was killed. */
const CRASH_SIGNALS: ReadonlySet<string> = new Set(['SIGSEGV', 'SIGABRT', 'SIGBUS', 'SIGILL', 'SIGFPE', 'SIGSYS', 'SIGTRAP']);

const SHUTDOWN_TRACE = new RegExp(`${SHUTDOWN_TRACE_EVENT} reason=(\\d+)`, 'g');

/** The last shutdown cause in QEMU's event log, if it traced one. */
export function lastShutdownCause(eventLog: string): number | undefined {
	const causes = [...eventLog.matchAll(SHUTDOWN_TRACE)];
	const last = causes.at(-1);
	return last === undefined ? undefined : Number(last[1]);
}

// QEMU's own words when SIGTERM, SIGINT or SIGHUP made it exit 0 (untraced).
const TERMINATED_BY_SIGNAL = /terminating on signal \d+/;

/**
 * The death reason of a QEMU exit. Exit 0 is read from the traced shutdown cause: guest power-off
 * SHUTDOWN, pvpanic GUEST_PANIC; a guest reset is not traced when `-action reboot=shutdown` turns it
 * into an exit, so exit 0 with no cause is REBOOT, unless QEMU's stderr says a signal ended it
 * (KILLED). Exit 1 is QEMU's error exit (ERROR). A signal is KILLED, or CRASH when it is one QEMU
 * dies of by itself (SIGSEGV, SIGABRT, ...).
 */
export function qemuExitReason(exit: VmmExit, eventLog: string, stderrTail = ''): DeathReason {
	if (exit.signal !== undefined) {
		return CRASH_SIGNALS.has(exit.signal) ? DeathReason.CRASH : DeathReason.KILLED;
	}

	switch (exit.exitCode) {
		case 0: {
			const cause = lastShutdownCause(eventLog);
			if (cause === undefined) {
				return TERMINATED_BY_SIGNAL.test(stderrTail) ? DeathReason.KILLED : DeathReason.REBOOT;
			}

			return SHUTDOWN_CAUSES.get(cause) ?? DeathReason.UNKNOWN;
		}

		case 1: {
			return DeathReason.ERROR;
		}

		default: {
			return DeathReason.UNKNOWN;
		}
	}
}

/** More than QEMU traces for any exit (a line per shutdown request): a bigger log is not QEMU's doing alone. */
export const MAX_EVENT_LOG_BYTES = 1024 * 1024;

/**
 * The event log QEMU wrote in the VM's directory, read as hostile input: a regular file only, never
 * through a link, at most MAX_EVENT_LOG_BYTES. Anything else (absent, a link, too big) gives no
 * traced cause, and the exit status decides.
 */
async function readEventLog(tempDir: string): Promise<string> {
	const read = await readSmallFileAsync(join(tempDir, QEMU_EVENT_LOG), MAX_EVENT_LOG_BYTES);
	return read.ok ? read.text : '';
}

/** Where QEMU's QMP socket is: the control socket, else `qemu.sock` in the VM's temporary directory. */
function qmpSocket(context: VmmStopContext): string {
	return context.controlSocket ?? join(context.tempDir, 'qemu.sock');
}

/** Runs one QMP command for a control operation and returns its value; `VmControlError` when it fails. */
async function qmpControl(socket: string, operation: VmControlOperation, command: string, timeoutMs: number, args?: Record<string, unknown>): Promise<unknown> {
	try {
		return await qmpExecute(socket, command, timeoutMs, args);
	} catch (error) {
		throw new VmControlError(operation, `QMP ${command} failed: ${error instanceof Error ? error.message : String(error)}`, {}, {cause: error});
	}
}

/** QEMU's guest memory when `-m` is not given: 128 MiB (hw/i386/pc.c, `mc->default_ram_size`). */
export const QEMU_DEFAULT_MEMORY_BYTES = 128 * 1024 * 1024;

/**
 * The guest memory QEMU was started with, which its balloon commands count from. `VmControlUnsupportedError`
 * when the VM has no balloon device (`balloon: true` adds one), `VmControlError` when the memory is not a
 * whole positive number of bytes (the config was changed after it was checked).
 */
function balloonMemory(context: VmmControlContext, operation: VmControlOperation): number {
	if (context.balloon !== true) {
		throw new VmControlUnsupportedError(operation, 'qemu', 'the VM has no balloon device (set balloon: true in its config)');
	}

	const memory = context.memoryBytes ?? QEMU_DEFAULT_MEMORY_BYTES;
	if (!isByteCount(memory) || memory === 0) {
		throw new VmControlError(operation, `the guest memory is not a whole positive number of bytes: ${String(memory)}`);
	}

	return memory;
}

/**
 * QMP `balloon`'s `value` is the memory the guest keeps (qapi/machine.json), vmwarden's balloon size
 * the memory taken from it: the target is the configured memory less `bytes`. QEMU refuses a target
 * of 0, so the balloon may take all but one byte (the guest driver works in 4 KiB pages).
 */
export async function setQemuBalloon(context: VmmControlContext, bytes: number, socket: string, timeoutMs: number): Promise<void> {
	const memory = balloonMemory(context, 'setBalloon');
	if (bytes >= memory) {
		throw new InvalidConfigError('bytes', `must be less than the guest memory (${memory} bytes)`);
	}

	await qmpControl(socket, 'setBalloon', 'balloon', timeoutMs, {value: memory - bytes});
}

/**
 * QMP `query-balloon` answers `{"actual": BYTES}`, the memory the guest has now (qapi/machine.json):
 * the balloon's size is the configured memory less that. QEMU reports the guest's statistics only
 * through a polling interval on the device's `guest-stats` property, which vmwarden does not set:
 * `stats` is empty. The answer comes from another process: its shape and number are checked.
 */
export async function qemuBalloonStats(context: VmmControlContext, socket: string, timeoutMs: number): Promise<BalloonStats> {
	const memory = balloonMemory(context, 'balloonStats');
	const info = await qmpControl(socket, 'balloonStats', 'query-balloon', timeoutMs);
	const actual = typeof info === 'object' && info !== null && 'actual' in info ? info.actual : undefined;
	if (!isByteCount(actual) || actual > memory) {
		throw new VmControlError('balloonStats', `QMP query-balloon answered an actual that is not a byte count up to ${memory}: ${JSON.stringify(actual) ?? 'none'}`);
	}

	return {actualBytes: memory - actual, stats: {}};
}

/**
 * The QEMU driver (`qemu-system-x86_64`): the command line of `qemuCommand`, graceful stop as an
 * ACPI power button press (QMP `system_powerdown` on the socket in the VM's temporary directory),
 * and death reasons from the exit and QEMU's traced shutdown cause. See docs/qemu.md.
 */
export function createQemuDriver(options: QemuDriverOptions = {}): VmmDriver {
	const {accelerators, vsock, extraArgs, stopRequestTimeoutMs = 10_000, controlTimeoutMs = 10_000} = options;
	return {
		name: 'qemu',
		defaultPath: 'qemu-system-x86_64',
		command(config, commandOptions) {
			return qemuCommand(config, {
				cid: commandOptions.cid,
				qmpSocket: commandOptions.controlSocket ?? join(commandOptions.tempDir, 'qemu.sock'),
				eventLog: join(commandOptions.tempDir, QEMU_EVENT_LOG),
				payloadChannel: commandOptions.payloadChannel,
				accelerators,
				vsock,
				extraArgs,
			});
		},
		async requestStop(context) {
			const socket = qmpSocket(context);
			try {
				// Abandoned once the VM died: QEMU and its socket are gone.
				await qmpExecute(socket, 'system_powerdown', stopRequestTimeoutMs, undefined, context.signal);
			} catch (error) {
				throw new StopRequestError(`cannot ask QEMU (pid ${context.pid}) to power off: ${(error as Error).message}`, {}, {cause: error});
			}
		},
		async exitReason(exit, {tempDir, stderrTail}) {
			return qemuExitReason(exit, await readEventLog(tempDir), stderrTail);
		},
		// QMP `stop` and `cont` pause and resume the vCPUs, as `crosvm suspend|resume` do.
		async suspend(context) {
			await qmpControl(qmpSocket(context), 'suspend', 'stop', controlTimeoutMs);
		},
		async resume(context) {
			await qmpControl(qmpSocket(context), 'resume', 'cont', controlTimeoutMs);
		},
		async setBalloon(context, bytes) {
			await setQemuBalloon(context, bytes, qmpSocket(context), controlTimeoutMs);
		},
		async balloonStats(context) {
			return qemuBalloonStats(context, qmpSocket(context), controlTimeoutMs);
		},
	};
}

/** The QEMU driver with defaults: KVM, else TCG. */
export const qemuDriver: VmmDriver = createQemuDriver();
