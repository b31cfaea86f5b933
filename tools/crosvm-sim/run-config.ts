import type {SimBuild} from './build.js';
import type {DiskParameters} from './disk-options.js';
import {ConfigurationError} from './failures.js';
import {serialKey, type SerialParameters} from './serial-options.js';

/**
 * What `crosvm run` was asked to do, once its arguments parsed: what both parsers (today's in
 * run-command.ts, 2022's in run-command-2022.ts) produce, here so that neither imports the other's.
 */
export interface RunCommand {
	kernel?: string;
	bios?: string;
	initrd?: string;
	params: string[];
	memoryMib?: number;
	cpus?: number;
	cid?: number;
	vsockCid?: number;
	disks: DiskParameters[];
	/** Whether `--disk` or `--rwdisk` was used: crosvm warns that they are deprecated. */
	deprecatedDisks: boolean;
	serials: SerialParameters[];
	socket?: string;
	/** The protection modes in effect (`--protected-vm`, ...): today more than one is refused. */
	protectionModes: string[];
	swiotlbMib?: number;
	taskProfiles: string[];
	/** Warnings crosvm logs while parsing, in order. */
	warnings: string[];
}

/** A `RunCommand` that passed crosvm's configuration checks, with its serial devices by key. */
export interface RunConfig extends RunCommand {
	/** `hardware/num` to device, with crosvm's default console added when it applies. */
	serialDevices: Map<string, SerialParameters>;
}

/**
 * crosvm's checks across serial devices: in the `serial` case of `set_argument` (src/main.rs at
 * efdcf90a4, argument errors worded `too many arguments: ...`) and in `TryFrom<RunCommand> for
 * Config` (src/crosvm/cmdline.rs at f1e797a68). Two `console` devices were refused until
 * 2024-02-21 (f934bc041) and are allowed since.
 */
function checkSerials(serials: readonly SerialParameters[], legacy: boolean): Map<string, SerialParameters> {
	const tooMany = (message: string) => new ConfigurationError(legacy ? `too many arguments: ${message}` : message);
	const devices = new Map<string, SerialParameters>();
	for (const serial of serials) {
		const previous = [...devices.values()];
		if (devices.has(serialKey(serial))) {
			throw tooMany(`serial hardware ${serial.hardware} num ${serial.num}`);
		}

		const console = legacy && serial.console ? previous.find(device => device.console) : undefined;
		if (console !== undefined) {
			throw tooMany(`${console.hardware} device ${console.num} already set as console`);
		}

		if (serial.earlycon) {
			if (serial.hardware !== 'serial') {
				throw new ConfigurationError(`invalid value ${legacy ? `"${serial.hardware}"` : serial.hardware}: earlycon not supported for hardware`);
			}

			const earlycon = previous.find(device => device.earlycon);
			if (earlycon !== undefined) {
				throw tooMany(`${earlycon.hardware} device ${earlycon.num} already set as earlycon`);
			}
		}

		const stdin = serial.stdin ? previous.find(device => device.stdin) : undefined;
		if (stdin !== undefined) {
			throw tooMany(`${stdin.hardware} device ${stdin.num} already connected to standard input`);
		}

		devices.set(serialKey(serial), serial);
	}

	// crosvm's set_default_serial_parameters: without any console, ttyS0 becomes a stdout console.
	if (![...devices.values()].some(device => device.console) && !devices.has('serial/1')) {
		devices.set('serial/1', {type: 'stdout', hardware: 'serial', num: 1, console: true, earlycon: false, stdin: true});
	}

	return devices;
}

/**
 * The checks crosvm makes after parsing and before setting anything up (exit 1): serial devices,
 * `--cid` with `--vsock`, protection modes, and exactly one executable (kernel or `--bios`); and
 * today's warning for the deprecated `--disk`/`--rwdisk`.
 */
export function checkRunCommand(command: RunCommand, build: SimBuild): RunConfig {
	const legacy = build.dialect === 'aosp-2022';
	const serialDevices = checkSerials(command.serials, legacy);
	if (command.cid !== undefined && command.vsockCid !== undefined) {
		throw new ConfigurationError('`cid` and `vsock` cannot be specified together. Use `vsock` only.');
	}

	if (command.protectionModes.length > 1) {
		throw new ConfigurationError('Only one protection mode has to be specified');
	}

	if (command.bios !== undefined && command.kernel !== undefined) {
		throw new ConfigurationError(`A VM executable was already specified: Some(Kernel("${command.kernel}"))`);
	}

	if (command.bios === undefined && command.kernel === undefined) {
		throw new ConfigurationError('Executable is not specified');
	}

	const warnings = command.deprecatedDisks && !legacy ? [...command.warnings, 'Deprecated disk flags such as --[rw]disk or --[rw]root are passed. Use --block instead.'] : command.warnings;
	return {...command, warnings, serialDevices};
}
