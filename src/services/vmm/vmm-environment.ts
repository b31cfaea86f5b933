import {checkNotProxy, checkPlainPrototype} from '../config/plain-data.js';
import {InvalidConfigError} from '../../errors.js';

/** The environment of a VMM process and of the VMM's commands (`crosvm stop`, `suspend`, `balloon`). */
export type VmmEnvironment = Readonly<Record<string, string>>;

/**
 * What a VMM gets of the host's environment when the caller names none, as libvirt gives QEMU: where
 * programs are, who and where the user is, the locale, the time zone, and what is named for the VMM
 * (`PASSED_HOST_PREFIXES`, Rust's log and backtrace switches). Nothing else: a VMM runs the devices a
 * guest talks to, and a host's environment can hold secrets (tokens, database URLs) and settings
 * meant for the host alone (`NODE_OPTIONS`, `LD_PRELOAD`).
 */
export const PASSED_HOST_VARIABLES: readonly string[] = ['PATH', 'HOME', 'USER', 'LOGNAME', 'LANG', 'LC_ALL', 'TMPDIR', 'TZ', 'RUST_LOG', 'RUST_BACKTRACE'];

/** Variables named for a VMM (`CROSVM_SIM_BUILD`, `QEMU_AUDIO_DRV`), also passed by default. */
export const PASSED_HOST_PREFIXES: readonly string[] = ['CROSVM_', 'QEMU_'];

/** Bounds of a `vmmEnvironment`, checked before anything else is done with it. */
export const VMM_ENVIRONMENT_LIMITS = {
	variables: 256,
	nameBytes: 255,
	/** Every `NAME=value` with its terminating NUL, as the kernel counts them: well under its own limit. */
	totalBytes: 128 * 1024,
} as const;

const VARIABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** `toJSON` shows an environment by its names; `__proto__` cannot be set on an object as a variable. */
const RESERVED_NAMES: ReadonlySet<string> = new Set(['toJSON', '__proto__']);

/**
 * The host's variables that `PASSED_HOST_VARIABLES` and `PASSED_HOST_PREFIXES` name, as they are
 * now: a VMM's default environment. Spread it to add to it: `{...defaultVmmEnvironment(), X: 'y'}`.
 */
export function defaultVmmEnvironment(from: NodeJS.ProcessEnv = process.env): VmmEnvironment {
	const environment: Record<string, string> = {};
	for (const name of Object.keys(from)) {
		const value = from[name];
		if (value !== undefined && (PASSED_HOST_VARIABLES.includes(name) || PASSED_HOST_PREFIXES.some(prefix => name.startsWith(prefix)))) {
			environment[name] = value;
		}
	}

	return sealed(environment);
}

/**
 * Frozen, and shown by name only: a VM's environment is in the supervisor's context and a VM actor's
 * input, which inspectors and recordings serialize, and its values may be secrets. `toJSON` is not
 * enumerable, so a spawn, a spread and a structured clone see the variables alone.
 */
function sealed(environment: Record<string, string>): VmmEnvironment {
	Object.defineProperty(environment, 'toJSON', {value: () => ({variables: Object.keys(environment)}), enumerable: false});
	return Object.freeze(environment);
}

/**
 * Checks a caller's `vmmEnvironment` and returns a frozen copy (what the VMMs get, whatever the caller
 * changes later). Throws `InvalidConfigError` naming `field`, or `field.NAME`, and the reason.
 */
export function checkVmmEnvironment(field: string, value: unknown): VmmEnvironment {
	checkNotProxy(field, value, 'object');
	if (typeof value !== 'object' || value === null || Array.isArray(value)) {
		throw new InvalidConfigError(field, 'must be an object of variable names to string values');
	}

	checkPlainPrototype(field, value);

	const names = Object.getOwnPropertyNames(value);
	if (names.length > VMM_ENVIRONMENT_LIMITS.variables) {
		throw new InvalidConfigError(field, `has ${names.length} variables, more than ${VMM_ENVIRONMENT_LIMITS.variables}`);
	}

	const environment: Record<string, string> = {};
	let totalBytes = 0;
	for (const name of names) {
		if (RESERVED_NAMES.has(name)) {
			throw new InvalidConfigError(`${field}.${name}`, 'is a name vmwarden keeps for itself (the environment shows its variables\' names only)');
		}

		if (name.length > VMM_ENVIRONMENT_LIMITS.nameBytes || !VARIABLE_NAME.test(name)) {
			throw new InvalidConfigError(`${field}.${name.slice(0, 64)}`, `is not a variable name (letters, digits and _, not first a digit, at most ${VMM_ENVIRONMENT_LIMITS.nameBytes} bytes)`);
		}

		const descriptor = Object.getOwnPropertyDescriptor(value, name);
		if (descriptor?.get !== undefined || descriptor?.enumerable !== true) {
			throw new InvalidConfigError(`${field}.${name}`, 'must be a plain enumerable value, not a getter');
		}

		const variable: unknown = descriptor.value;
		if (typeof variable !== 'string') {
			throw new InvalidConfigError(`${field}.${name}`, 'must be a string');
		}

		// Bounded before it is searched: a huge value is refused without being read through.
		totalBytes += name.length + 2 + (variable.length > VMM_ENVIRONMENT_LIMITS.totalBytes ? variable.length : Buffer.byteLength(variable));
		if (totalBytes > VMM_ENVIRONMENT_LIMITS.totalBytes) {
			throw new InvalidConfigError(field, `is more than ${VMM_ENVIRONMENT_LIMITS.totalBytes} bytes`);
		}

		if (variable.includes('\0')) {
			throw new InvalidConfigError(`${field}.${name}`, 'must not contain a NUL byte');
		}

		environment[name] = variable;
	}

	return sealed(environment);
}
