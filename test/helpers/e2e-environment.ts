import {spawnSync} from 'node:child_process';
import path from 'node:path';
import {describe} from '@jest/globals';

/** What scripts/e2e/setup.sh prepared: QEMU and the guest to boot. */
export interface E2eManifest {
	qemu: string;
	qemuVersion: string;
	kernel: string;
	initrd: string;
	kernelPackage: string;
}

export type E2eEnvironment = {ready: true; manifest: E2eManifest} | {ready: false; reason: string};

/** setup.sh's status for "this machine cannot have the packages". */
const UNAVAILABLE = 3;

let environment: E2eEnvironment | undefined;

/**
 * Runs scripts/e2e/setup.sh once per test process (it installs what is missing and is quick once
 * done) and reads its manifest. Called when a test file loads, so the file can choose between
 * running its tests and skipping them with a printed reason. A machine that cannot have the
 * packages gives `ready: false`; any other setup failure throws, so a broken setup fails the tests.
 */
export function e2eEnvironment(): E2eEnvironment {
	if (environment !== undefined) {
		return environment;
	}

	const script = path.resolve('scripts/e2e/setup.sh');
	const result = spawnSync('bash', [script], {encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 15 * 60_000});
	const stderr = result.stderr.trim();
	if (result.status === UNAVAILABLE) {
		environment = {ready: false, reason: stderr.split('\n').at(-1) ?? 'scripts/e2e/setup.sh: packages unavailable'};
		return environment;
	}

	if (result.status !== 0) {
		throw new Error(`scripts/e2e/setup.sh failed (${result.error?.message ?? `status ${result.status ?? result.signal}`}):\n${stderr}`);
	}

	const manifest = JSON.parse(result.stdout.trim().split('\n').at(-1)!) as E2eManifest;
	environment = {ready: true, manifest};
	return environment;
}

/**
 * `describe` when the end-to-end environment is ready, else a skipped describe after printing why
 * (never silently).
 */
export function describeWhenReady(name: string): {environment: E2eEnvironment; describe: typeof describe | typeof describe.skip} {
	const current = e2eEnvironment();
	if (!current.ready) {
		console.warn(`SKIPPING the end-to-end tests "${name}": ${current.reason}`);
	}

	return {environment: current, describe: current.ready ? describe : describe.skip};
}
