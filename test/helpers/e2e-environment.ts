import {spawnSync} from 'node:child_process';
import {mkdirSync, mkdtempSync, rmSync} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {afterEach, beforeEach, describe, expect} from '@jest/globals';
import type {Supervisor} from '../../src/supervisor.js';
import type {Vm} from '../../src/vm.js';
import {settleLeaks, takeSnapshot, type ResourceSnapshot} from './leak-checker.js';

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

/** What each end-to-end test works in, and what it leaves for the fixture to end and check. */
export interface E2eWorkspace {
	/** The test's own directory (console files, disk images), removed after it. */
	readonly work: string;
	/** The VMs' temporary root inside it: checked to be empty after the test. */
	readonly tempRoot: string;
	/** VMs to kill after the test (if still running). */
	readonly vms: Vm[];
	/** Supervisors to shut down after the test. */
	readonly supervisors: Supervisor[];
	/** More to release after the VMs are gone (a caller's own descriptors). */
	readonly cleanups: Array<() => void>;
}

/**
 * A fresh workspace for each test of the describe block it is called in; after each test it shuts
 * down the supervisors, kills the VMs, runs the cleanups, and checks through /proc and the file
 * system that no process, descriptor or temporary directory is left before removing the directory.
 */
export function useE2eWorkspace(): E2eWorkspace {
	let current: {work: string; tempRoot: string} | undefined;
	let baseline: ResourceSnapshot;
	const vms: Vm[] = [];
	const supervisors: Supervisor[] = [];
	const cleanups: Array<() => void> = [];
	const dirs = () => {
		if (current === undefined) {
			throw new Error('the e2e workspace exists only while a test runs');
		}

		return current;
	};

	beforeEach(() => {
		const work = mkdtempSync(path.join(os.tmpdir(), 'vmwarden-e2e-'));
		const tempRoot = path.join(work, 'vms');
		mkdirSync(tempRoot);
		current = {work, tempRoot};
		baseline = takeSnapshot([tempRoot]);
	});

	afterEach(async () => {
		for (const supervisor of supervisors.splice(0)) {
			await supervisor.shutdown({stopTimeoutMs: 0});
		}

		for (const vm of vms.splice(0)) {
			vm.kill();
			if (vm.state === 'Running') {
				await vm.died;
			}
		}

		for (const cleanup of cleanups.splice(0)) {
			cleanup();
		}

		const {work, tempRoot} = dirs();
		current = undefined;
		expect(await settleLeaks(baseline, [tempRoot], 5000)).toEqual([]);
		rmSync(work, {recursive: true, force: true});
	});

	return {
		get work() {
			return dirs().work;
		},
		get tempRoot() {
			return dirs().tempRoot;
		},
		vms,
		supervisors,
		cleanups,
	};
}
