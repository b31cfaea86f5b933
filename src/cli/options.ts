import {InvalidArgumentError, Option} from 'commander';
import {checkVmmEnvironment, createCrosvmDriver, createQemuDriver, defaultVmmEnvironment, InvalidConfigError, type CrosvmDialect, type QemuAccelerator, type VmmDriver} from '../index.js';

/** The options every command that starts VMs takes: which VMM, and how to speak to it. */
export interface VmmOptions {
	driver: 'crosvm' | 'qemu';
	vmm?: string;
	dialect: CrosvmDialect;
	/** QEMU's accelerators, tried in order. */
	accel?: QemuAccelerator[];
	/** Variables added to the VMM's default environment (`--vmm-env NAME=VALUE`, repeatable). */
	vmmEnv?: Record<string, string>;
}

const ACCELERATORS: readonly QemuAccelerator[] = ['kvm', 'tcg', 'xen', 'hvf', 'whpx'];

function isAccelerator(value: string): value is QemuAccelerator {
	return (ACCELERATORS as readonly string[]).includes(value);
}

/** A commander parser for QEMU's accelerators: a comma-separated list, each known, none twice. */
export function accelerators(value: string): QemuAccelerator[] {
	const list = value.split(',');
	if (list.length > ACCELERATORS.length || new Set(list).size !== list.length || !list.every(name => isAccelerator(name))) {
		throw new InvalidArgumentError(`must be a comma-separated list of ${ACCELERATORS.join(', ')}, each at most once`);
	}

	return list.filter(name => isAccelerator(name));
}

/**
 * A commander parser for `--vmm-env NAME=VALUE`, repeatable: a variable the VMM and its commands get
 * on top of `defaultVmmEnvironment()`. Checked as the whole environment will be, so a bad one is a
 * usage error naming the option.
 */
export function environmentVariable(value: string, previous: Record<string, string> | undefined): Record<string, string> {
	const at = value.indexOf('=');
	if (at <= 0) {
		throw new InvalidArgumentError('must be NAME=VALUE');
	}

	const added = {...previous, [value.slice(0, at)]: value.slice(at + 1)};
	try {
		checkVmmEnvironment('--vmm-env', {...defaultVmmEnvironment(), ...added});
	} catch (error) {
		if (error instanceof InvalidConfigError) {
			throw new InvalidArgumentError(`${error.field} ${error.reason}`);
		}

		throw error;
	}

	return added;
}

/** A commander parser for a whole number from `min` to `max`. */
export function integer(min: number, max: number): (value: string) => number {
	return value => {
		if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value)) || Number(value) < min || Number(value) > max) {
			throw new InvalidArgumentError(`must be an integer from ${min} to ${max}`);
		}

		return Number(value);
	};
}

export function vmmOptions(): Option[] {
	return [
		new Option('--driver <driver>', 'the VMM').choices(['crosvm', 'qemu']).default('crosvm'),
		new Option('--vmm <path>', 'the VMM binary (default: crosvm, or qemu-system-* for --driver qemu, on PATH)'),
		new Option('--dialect <dialect>', 'the crosvm command-line dialect').choices(['current', 'aosp-2022']).default('current'),
		new Option('--accel <list>', 'QEMU\'s accelerators, tried in order (default kvm,tcg)').argParser(accelerators),
		new Option('--vmm-env <NAME=VALUE>', 'give the VMM and its commands this variable too (repeatable; by default they get PATH, HOME, USER, LOGNAME, LANG, LC_ALL, TMPDIR, TZ, RUST_LOG, RUST_BACKTRACE and CROSVM_*, QEMU_* of this environment, nothing else)').argParser(environmentVariable),
	];
}

/** The driver and VMM path the options name. */
export function vmmChoice(options: VmmOptions): {driver: VmmDriver; crosvmPath: string | undefined; vmmEnvironment: Record<string, string> | undefined} {
	const driver = options.driver === 'qemu' ? createQemuDriver(options.accel === undefined ? {} : {accelerators: options.accel}) : createCrosvmDriver({dialect: options.dialect});
	const vmmEnvironment = options.vmmEnv === undefined ? undefined : {...defaultVmmEnvironment(), ...options.vmmEnv};
	return {driver, crosvmPath: options.vmm, vmmEnvironment};
}
