import {closeSync, readSync} from 'node:fs';
import type {SimBuild} from './build.js';
import type {BalloonStatsResponse} from './control-protocol.js';
import {startControlServer, type ControlServer} from './control-server.js';
import {openFileOrInherited, osErrorText} from './descriptors.js';
import {ConfigurationError} from './failures.js';
import type {GuestDevices, GuestHost} from './guest-runner.js';
import {GuestScriptError, parseGuestScript, type FinalAction, type GuestScript} from './guest-script.js';
import {log} from './log.js';
import type {RunConfig} from './run-config.js';
import {openSerialOutput, type SerialOutput} from './serial-devices.js';

/** crosvm's guest memory without `--mem` (256 MiB, src/crosvm/sys/linux.rs at f1e797a68). */
const DEFAULT_MEMORY_MIB = 256;

/** What the simulated guest's kernel and script use, for its balloon statistics. */
const GUEST_USED_BYTES = 32 * 1024 * 1024;

/** A guest script is small; a bigger file is a real kernel image, which the simulator cannot boot. */
const MAX_SCRIPT_BYTES = 1 << 20;

/**
 * The outcomes that `--extended-status` tells apart, with crosvm's exit codes and closing log lines:
 * today's (`CommandStatus::message`, src/main.rs at f1e797a68) and the 2022 build's (`run_vm`,
 * src/main.rs at efdcf90a4, which had no watchdog status).
 */
const FINAL_STATUS = {
	poweroff: {code: 0, message: 'exiting with success', message2022: 'crosvm has exited normally'},
	reboot: {code: 32, message: 'exiting with reset', message2022: 'crosvm has exited normally due to reset request'},
	crash: {code: 33, message: 'exiting with crash', message2022: 'crosvm has exited due to a VM crash'},
	panic: {code: 34, message: 'exiting with guest panic', message2022: 'crosvm has exited due to a kernel panic in guest'},
	watchdog: {code: 36, message: 'exiting with watchdog reset', message2022: 'crosvm has exited normally due to reset request'},
} as const;

/** Reads a descriptor to its end (a pipe has no size to go by), refusing more than `limit` bytes. */
function readAtMost(fd: number, limit: number): string | undefined {
	const chunks: Buffer[] = [];
	let total = 0;
	for (;;) {
		const chunk = Buffer.allocUnsafe(64 * 1024);
		const read = readSync(fd, chunk, 0, chunk.length, null);
		if (read === 0) {
			return Buffer.concat(chunks, total).toString('utf8');
		}

		chunks.push(chunk.subarray(0, read));
		total += read;
		if (total > limit) {
			return undefined;
		}
	}
}

function readGuestScript(path: string, what: string): GuestScript {
	const {fd, opened} = openFileOrInherited(path, 'r', what);
	try {
		const text = readAtMost(fd, MAX_SCRIPT_BYTES);
		if (text === undefined) {
			throw new GuestScriptError(1, `not a guest script: larger than ${MAX_SCRIPT_BYTES} bytes`);
		}

		return parseGuestScript(text);
	} catch (error) {
		if (error instanceof GuestScriptError) {
			throw new ConfigurationError(`failed to load ${what} ${path}: invalid guest script: ${error.message}`);
		}

		throw new ConfigurationError(`failed to load ${what} ${path}: ${osErrorText(error)}`);
	} finally {
		if (opened) {
			closeSync(fd);
		}
	}
}

/** The exit status of a final action: crosvm gives the distinct codes only with `--extended-status`. */
export function finalExitStatus(kind: keyof typeof FINAL_STATUS, build: SimBuild, extendedStatus: boolean): {code: number; message: string} {
	// 36 arrived in October 2022: a 2022 build reports a watchdog reset as a reset.
	const legacy = build.dialect === 'aosp-2022';
	const status = kind === 'watchdog' && legacy ? FINAL_STATUS.reboot : FINAL_STATUS[kind];
	return {code: extendedStatus ? status.code : 0, message: legacy ? status.message2022 : status.message};
}

/** The running VM: its control socket, the switches its guest flipped, and its way out. */
class SimulatedVm implements GuestHost {
	control: ControlServer | undefined;
	#suspended: Promise<void> | undefined;
	#resume: (() => void) | undefined;
	#stopIgnored = false;
	/** The balloon's target, which the simulated guest's driver reaches at once. */
	balloonBytes = 0;
	readonly #failure: SerialOutput | undefined;

	constructor(failure: SerialOutput | undefined) {
		this.#failure = failure;
	}

	/** Exits as crosvm does at the end of its run loop: logs, removes its control socket. */
	exit(code: number, message: string): never {
		log('info', message);
		this.control?.unlink();
		process.exit(code);
	}

	whenRunning(): Promise<void> {
		return this.#suspended ?? Promise.resolve();
	}

	suspend(): void {
		this.#suspended ??= new Promise(resolve => {
			this.#resume = resolve;
		});
	}

	resume(): void {
		this.#resume?.();
		this.#suspended = undefined;
		this.#resume = undefined;
	}

	/** What the guest's balloon driver reports: its memory, less the balloon; what it does not track is null. */
	async balloonStats(memoryMib: number): Promise<BalloonStatsResponse> {
		await this.whenRunning();
		const total = memoryMib * 1024 * 1024;
		const free = Math.max(0, total - this.balloonBytes - GUEST_USED_BYTES);
		return {
			BalloonStats: {
				stats: {
					swap_in: 0,
					swap_out: 0,
					major_faults: 0,
					minor_faults: 0,
					free_memory: free,
					total_memory: total,
					available_memory: free,
					disk_caches: 0,
					hugetlb_allocations: null,
					hugetlb_failures: null,
					shared_memory: null,
					unevictable_memory: null,
				},
				balloon_actual: this.balloonBytes,
			},
		};
	}

	answerStop(): boolean {
		return !this.#stopIgnored;
	}

	ignoreSigterm(): void {
		process.on('SIGTERM', ignoreSignal);
	}

	ignoreStop(): void {
		this.#stopIgnored = true;
	}

	async spawnHolder(ms: number): Promise<void> {
		const {spawn} = await import('node:child_process');
		const holder = spawn(process.execPath, ['-e', `setTimeout(() => {}, ${ms})`], {
			detached: true,
			stdio: ['ignore', 'ignore', 'ignore', this.#failure?.fd ?? 'ignore'],
		});
		await new Promise<void>(resolve => {
			holder.once('spawn', resolve);
			holder.once('error', error => {
				log('error', `spawn-holder failed: ${error.message}`);
				resolve();
			});
		});
		holder.unref();
	}

	/** Ends the VM the way the guest's final action says; `hang` returns and keeps it running. */
	finish(final: FinalAction, build: SimBuild, extendedStatus: boolean): void {
		switch (final.kind) {
			case 'hang': {
				// Keep the process alive even without a control socket.
				setInterval(ignoreSignal, 2 ** 31 - 1);
				return;
			}

			case 'exit': {
				this.exit(final.code, `exiting with status ${final.code}`);
				break;
			}

			case 'signal': {
				dieBy(final.signal);
				break;
			}

			case 'abort': {
				// crosvm's own Rust panic: a message, then SIGABRT.
				process.stderr.write("thread 'main' panicked at src/crosvm-sim: the guest script asked crosvm to abort\n");
				dieBy('SIGABRT');
				break;
			}

			default: {
				const {code, message} = finalExitStatus(final.kind, build, extendedStatus);
				this.exit(code, message);
			}
		}
	}
}

function ignoreSignal(): void {
	// Deliberately nothing: the guest asked to ignore it, or a timer only holds the loop open.
}

function dieBy(signal: NodeJS.Signals): void {
	process.removeAllListeners(signal);
	process.kill(process.pid, signal);
	// The signal is on its way; should it be caught somewhere after all, exit like a shell would.
	setTimeout(() => process.exit(128 + 1), 2000).unref();
	setInterval(ignoreSignal, 1000);
}

function isProtected(config: RunConfig): boolean {
	return config.protectionModes.some(mode => mode.startsWith('--protected-vm'));
}

/**
 * Sets the VM up as crosvm does (every failure exits 1 through `ConfigurationError`), then plays
 * the guest script until its final action, a stop request or a signal ends it.
 */
export async function runVm(config: RunConfig, build: SimBuild, extendedStatus: boolean): Promise<void> {
	if (isProtected(config) && process.env['CROSVM_SIM_NO_PROTECTED_KVM'] === '1') {
		throw new ConfigurationError('failed to create VM: the host does not support protected KVM (CROSVM_SIM_NO_PROTECTED_KVM=1)');
	}

	const script = config.kernel === undefined ? readGuestScript(config.bios!, 'bios') : readGuestScript(config.kernel, 'kernel image');
	if (config.initrd !== undefined) {
		openFileOrInherited(config.initrd, 'r', 'initrd');
	}

	for (const disk of config.disks) {
		openFileOrInherited(disk.path, disk.readOnly ? 'r' : 'r+', 'disk image');
	}

	const outputs = new Map<string, SerialOutput>();
	for (const [key, device] of config.serialDevices) {
		outputs.set(key, openSerialOutput(device));
	}

	const devices: GuestDevices = {};
	for (const [name, key] of [['console', 'serial/1'], ['failure', 'serial/2'], ['payload', 'serial/3'], ['kmsg', 'virtio-console/1'], ['log', 'virtio-console/3']] as const) {
		const output = outputs.get(key);
		if (output !== undefined) {
			devices[name] = output;
		}
	}

	// Loaded before the control socket listens: from then on the guest's first directives run in
	// the same turn (microtasks only), so a leading `ignore-stop` holds before any stop can arrive.
	const {runGuest} = await import('./guest-runner.js');
	const vm = new SimulatedVm(devices.failure);
	if (config.socket !== undefined) {
		vm.control = await startControlServer(config.socket, {
			stop: () => vm.exit(0, build.dialect === 'aosp-2022' ? FINAL_STATUS.poweroff.message2022 : 'exiting with stop'),
			answerStop: () => vm.answerStop(),
			suspend: () => {
				vm.suspend();
			},
			resume: () => {
				vm.resume();
			},
			adjustBalloon: numBytes => {
				vm.balloonBytes = numBytes;
			},
			balloonStats: async () => vm.balloonStats(config.memoryMib ?? DEFAULT_MEMORY_MIB),
		});
	}

	const final = await runGuest(script, devices, vm);
	vm.finish(final, build, extendedStatus);
}
