/**
 * Which crosvm build the simulator emulates, chosen by the environment:
 * `CROSVM_SIM_BUILD` = `current` (default) | `aosp-2022`, `CROSVM_SIM_OS` = `linux` | `android`,
 * `CROSVM_SIM_ARCH` = `x86_64` | `aarch64`.
 */
export type SimDialect = 'current' | 'aosp-2022';

/** One crosvm build: its age, and the OS and architecture it was compiled for. */
export interface SimBuild {
	dialect: SimDialect;
	os: 'linux' | 'android';
	arch: 'x86_64' | 'aarch64';
}

/** A bad `CROSVM_SIM_*` variable: the simulator cannot tell which crosvm to be. */
export class SimEnvironmentError extends Error {}

function choose<T extends string>(name: string, value: string | undefined, allowed: readonly T[], fallback: T): T {
	if (value === undefined || value === '') {
		return fallback;
	}

	if (!(allowed as readonly string[]).includes(value)) {
		throw new SimEnvironmentError(`${name} must be one of ${allowed.join(', ')}, not "${value}"`);
	}

	return value as T;
}

function hostArch(): SimBuild['arch'] {
	return process.arch === 'arm64' ? 'aarch64' : 'x86_64';
}

export function buildFromEnvironment(environment: NodeJS.ProcessEnv = process.env): SimBuild {
	const dialect = choose('CROSVM_SIM_BUILD', environment['CROSVM_SIM_BUILD'], ['current', 'aosp-2022'], 'current');
	const legacy = dialect === 'aosp-2022';
	return {
		dialect,
		os: choose('CROSVM_SIM_OS', environment['CROSVM_SIM_OS'], ['linux', 'android'], legacy ? 'android' : 'linux'),
		arch: choose('CROSVM_SIM_ARCH', environment['CROSVM_SIM_ARCH'], ['x86_64', 'aarch64'], legacy ? 'aarch64' : hostArch()),
	};
}

/**
 * The exit status of an argument error: 35 since August 2022, 1 before (crosvm-cli.md, History).
 */
export function argumentErrorStatus(build: SimBuild): number {
	return build.dialect === 'aosp-2022' ? 1 : 35;
}
