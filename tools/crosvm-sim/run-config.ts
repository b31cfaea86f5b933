import {ConfigurationError} from './failures.js';
import type {RunCommand} from './run-command.js';
import {serialKey, type SerialParameters} from './serial-options.js';

/** A `RunCommand` that passed crosvm's configuration checks, with its serial devices by key. */
export interface RunConfig extends RunCommand {
	/** `hardware/num` to device, with crosvm's default console added when it applies. */
	serialDevices: Map<string, SerialParameters>;
}

function checkSerials(serials: readonly SerialParameters[]): Map<string, SerialParameters> {
	const devices = new Map<string, SerialParameters>();
	for (const serial of serials) {
		const previous = [...devices.values()];
		if (devices.has(serialKey(serial))) {
			throw new ConfigurationError(`serial hardware ${serial.hardware} num ${serial.num}`);
		}

		const console = serial.console ? previous.find(device => device.console) : undefined;
		if (console !== undefined) {
			throw new ConfigurationError(`${console.hardware} device ${console.num} already connected to standard output`);
		}

		if (serial.earlycon) {
			if (serial.hardware !== 'serial') {
				throw new ConfigurationError(`invalid value "${serial.hardware}": earlycon not supported for hardware`);
			}

			const earlycon = previous.find(device => device.earlycon);
			if (earlycon !== undefined) {
				throw new ConfigurationError(`${earlycon.hardware} device ${earlycon.num} already set as earlycon`);
			}
		}

		const stdin = serial.stdin ? previous.find(device => device.stdin) : undefined;
		if (stdin !== undefined) {
			throw new ConfigurationError(`${stdin.hardware} device ${stdin.num} already connected to standard input`);
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
 * `--cid` with `--vsock`, protection modes, and exactly one executable (kernel or `--bios`).
 */
export function checkRunCommand(command: RunCommand): RunConfig {
	const serialDevices = checkSerials(command.serials);
	if (command.cid !== undefined && command.vsockCid !== undefined) {
		throw new ConfigurationError('`cid` and `vsock` cannot be specified together');
	}

	if (command.protectionModes.length > 1) {
		throw new ConfigurationError('Only one protection mode has to be specified');
	}

	if (command.bios !== undefined && command.kernel !== undefined) {
		throw new ConfigurationError(`A VM executable was already specified: Kernel("${command.kernel}")`);
	}

	if (command.bios === undefined && command.kernel === undefined) {
		throw new ConfigurationError('Executable is not specified');
	}

	return {...command, serialDevices};
}
