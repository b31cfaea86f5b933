import {chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {Writable} from 'node:stream';
import {execa} from 'execa';
import winston from 'winston';
import {afterEach, beforeAll, beforeEach, expect} from '@jest/globals';
import {createVm, type CreateVmOptions, type Vm} from '../../src/vm.js';
import type {VmConfig} from '../../src/services/config/vm-config.js';
import {settleLeaks, takeSnapshot, type ResourceSnapshot} from './leak-checker.js';
import {until} from './until.js';

/** The simulator, built by `npm run build` (VMWARDEN_TEST_VMM overrides it, to try another VMM). */
export const SIM_PATH = process.env['VMWARDEN_TEST_VMM'] ?? path.resolve('dist/crosvm-sim/cli.js');

/** A log line as the test logger keeps it. */
export interface LoggedLine {
	level: string;
	message: string;
	cid?: number;
	label?: string;
}

/** A logger that prints nothing and keeps every line, for assertions on what was logged. */
export function silentLogger(): winston.Logger & {lines: LoggedLine[]} {
	const lines: LoggedLine[] = [];
	const sink = new Writable({
		objectMode: true,
		write(info: LoggedLine, _encoding, callback) {
			lines.push(info);
			callback();
		},
	});
	const logger = winston.createLogger({level: 'debug', transports: [new winston.transports.Stream({stream: sink})]});
	return Object.assign(logger, {lines});
}

interface VmTestContext {
	/** A fresh directory for this test's guest scripts. */
	scripts: string;
	/** A fresh tempRoot for this test's VMs: it must be empty again after the test. */
	tempRoot: string;
	baseline: ResourceSnapshot;
	vms: Vm[];
}

/**
 * Per test: a scripts directory, an empty tempRoot, and a leak check afterwards that proves through
 * /proc and the file system that no process, no descriptor and no temporary directory is left.
 */
export function useVmFixture() {
	const context = {} as VmTestContext;
	beforeAll(async () => {
		if (!existsSync(SIM_PATH)) {
			throw new Error(`${SIM_PATH} is missing: run npm run build first`);
		}

		// The simulator plays the current crosvm build, matching the driver's default dialect.
		for (const name of ['CROSVM_SIM_BUILD', 'CROSVM_SIM_OS', 'CROSVM_SIM_ARCH']) {
			delete process.env[name];
		}

		// Warm up: the first spawn creates libuv's signal pipe and execa's listeners for good.
		await execa(process.execPath, ['-e', '0'], {cleanup: false});
	});
	beforeEach(() => {
		context.scripts = mkdtempSync(path.join(os.tmpdir(), 'vmw-test-scripts-'));
		context.tempRoot = mkdtempSync(path.join(os.tmpdir(), 'vmw-test-root-'));
		context.vms = [];
		context.baseline = takeSnapshot([context.tempRoot]);
	});
	afterEach(async () => {
		// A failed assertion may leave a VM running; kill it so the next test starts clean.
		const running = context.vms.filter(vm => vm.state === 'Running' && vm.actor.getSnapshot().status === 'active');
		for (const vm of running) {
			vm.kill();
		}

		await Promise.all(running.map(async vm => vm.died));
		const leaks = await settleLeaks(context.baseline, [context.tempRoot]);
		rmSync(context.scripts, {recursive: true, force: true});
		rmSync(context.tempRoot, {recursive: true, force: true});
		expect(leaks).toEqual([]);
	});

	/** Writes a guest script (the `#!crosvm-sim-guest` line is added) and returns its path. */
	const guest = (...directives: string[]): string => {
		const file = path.join(context.scripts, `guest-${Math.random().toString(36).slice(2)}`);
		writeFileSync(file, ['#!crosvm-sim-guest', ...directives, ''].join('\n'));
		return file;
	};

	/** A VM on the simulator, with a silent logger and this test's tempRoot. */
	const vm = (config: VmConfig, options: Partial<CreateVmOptions> = {}): Vm => {
		const created = createVm(config, {cid: 2048 + context.vms.length, crosvmPath: SIM_PATH, dialect: 'current', tempRoot: context.tempRoot, logger: silentLogger(), bootHangupTimeoutMs: 10_000, stopTimeoutMs: 5000, ...options});
		context.vms.push(created);
		return created;
	};

	/** A file that exists but may not be executed. */
	const notExecutable = (): string => {
		const file = path.join(context.scripts, 'not-executable');
		writeFileSync(file, '#!/bin/sh\nexit 0\n');
		chmodSync(file, 0o644);
		return file;
	};

	return {context, guest, vm, notExecutable};
}

/**
 * Resolves once `pid` runs the simulator itself. A VM is Running from setpriv's spawn, and during
 * setpriv's exec into the VMM the kernel shows an empty /proc/<pid>/cmdline and environ: read them
 * after this. Throws after 5 s.
 */
export async function simulatorRunning(pid: number): Promise<void> {
	await until(() => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(SIM_PATH), 5000);
}

/**
 * When the VM actor saw its VMM exit (the process region's `exited` state), in `Date.now()` time:
 * the moment from which the death must follow within a bounded time.
 */
export async function vmmExitSeen(vm: Vm): Promise<number> {
	return new Promise(resolve => {
		const subscription = vm.snapshots$.subscribe(snapshot => {
			if (snapshot.matches({Running: {process: 'exited'}}) || snapshot.status !== 'active') {
				resolve(Date.now());
				queueMicrotask(() => {
					subscription.unsubscribe();
				});
			}
		});
	});
}
