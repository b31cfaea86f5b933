/**
 * Which crosvm build the simulator emulates, chosen by the environment:
 * `CROSVM_SIM_BUILD` = `current` (default) | `aosp-2022`, `CROSVM_SIM_OS` = `linux` | `android`,
 * `CROSVM_SIM_ARCH` = `x86_64` | `aarch64`. Each dialect plays one commit of google/crosvm
 * (`PINNED_COMMITS`, docs/crosvm-sim.md).
 */
export type SimDialect = 'current' | 'aosp-2022';

/**
 * The google/crosvm commit each dialect plays. `aosp-2022`: the last commit before `run` moved to
 * argh, the parser Android's launcher of mid-2022 was written for (it joins task profiles with
 * commas, which only that parser split). `current`: the newest commit read.
 */
export const PINNED_COMMITS: Readonly<Record<SimDialect, {commit: string; date: string}>> = {
	'aosp-2022': {commit: 'efdcf90a427e23daf2e1058fc6cce7d105c791d3', date: '2022-06-13'},
	current: {commit: 'f1e797a68dada35cbafef8d0cfae36bacfaea85e', date: '2026-08-21'},
};

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
