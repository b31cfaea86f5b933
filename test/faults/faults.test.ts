/**
 * Fault injection: a small fleet on crosvm-sim under each fault, with the same invariants every
 * time: the host keeps running, every VM ends with a death reason or a typed start error,
 * `shutdown()` resolves, and no process, descriptor, temporary directory or state record is left.
 * Each fault is bounded in time (see docs/reliability.md).
 */
import {chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join, resolve} from 'node:path';
import {execa} from 'execa';
import winston from 'winston';
import {VmwardenError} from '../../src/errors.js';
import {createSupervisor, type Supervisor} from '../../src/supervisor.js';
import type {Vm} from '../../src/vm.js';
import {until} from '../helpers/until.js';
import {descendantsOf, settleLeaks, takeSnapshot, type ResourceSnapshot} from '../helpers/leak-checker.js';

const SIM_PATH = process.env['VMWARDEN_TEST_VMM'] ?? resolve('dist/crosvm-sim/cli.js');
const HOST = resolve('test/faults/fixtures/fault-host.ts');
const logger = winston.createLogger({silent: true});

let work: string;
let tempRoot: string;
let stateDir: string;
let baseline: ResourceSnapshot;
let supervisor: Supervisor | undefined;

function guest(...directives: string[]): string {
	const file = join(work, `guest-${Math.random().toString(36).slice(2)}`);
	writeFileSync(file, ['#!crosvm-sim-guest', ...directives, ''].join('\n'));
	chmodSync(file, 0o644);
	return file;
}

function supervise(options: Parameters<typeof createSupervisor>[0] = {}): Supervisor {
	supervisor = createSupervisor({crosvmPath: SIM_PATH, tempRoot, stateDir, logger, stopTimeoutMs: 1000, ...options});
	return supervisor;
}

/** Every start either runs or fails with a typed error; returns the VMs that run. */
async function startAll(vms: Vm[]): Promise<{running: Vm[]; errors: string[]}> {
	const results = await Promise.allSettled(vms.map(async vm => vm.start()));
	const errors = results.flatMap(result => result.status === 'rejected' ? [result.reason instanceof VmwardenError ? result.reason.code : `untyped: ${String(result.reason)}`] : []);
	return {running: vms.filter(vm => vm.state === 'Running'), errors};
}

function records(): string[] {
	return existsSync(join(stateDir, 'vms')) ? readdirSync(join(stateDir, 'vms')) : [];
}

function processGone(pid: number): boolean {
	try {
		process.kill(pid, 0);
		return false;
	} catch {
		return true;
	}
}

interface HostSummary {
	/** VMs whose start resolved. */
	started: number;
	/** Of those, the ones running once every start settled. */
	running: number;
	/** How many of them still ran 200 ms after the last start settled. */
	stillRunning: number;
	pids: number[];
	startErrors: string[];
	deathReasons: string[];
	tempEntries: string[];
	records: string[];
	/** Descriptors and child processes the host holds after shutdown that it did not before. */
	leaks: string[];
}

/**
 * Node's own report of a Node process (the spawner) that could not make its threads at start-up
 * (out of processes): an assertion or a pthread_create error, then its native stack. The kernel
 * refusing is what the test provokes; the host learns it as a lost spawner.
 */
const THREAD_START_FAILURE = /^(\s*#\s.*(node_platform|uv_thread_create).*|.*pthread_create: Resource temporarily unavailable.*|----- Native stack trace -----|\s*\d+: 0x[0-9a-f]+ .*|\s*)$/;

function withoutThreadStartFailures(stderr: string): string {
	return stderr.split('\n').filter(line => !THREAD_START_FAILURE.test(line)).join('\n');
}

/** Runs the fault host under a prefix (a limit, another user) and parses its summary line. */
async function runHost(prefix: string[], count: number, kernel: string, options: {readOnlyMount?: string; limits?: string} = {}): Promise<HostSummary> {
	const {readOnlyMount, limits} = options;
	const result = await execa(prefix[0]!, [...prefix.slice(1), process.execPath, '--import', 'tsx', HOST, SIM_PATH, tempRoot, stateDir, kernel, String(count), ...(readOnlyMount === undefined ? [] : [readOnlyMount])], {reject: false, timeout: 20_000, cleanup: true, env: limits === undefined ? {} : {FAULT_PRLIMIT: limits}});
	const stderr = limits?.includes('--nproc') === true ? withoutThreadStartFailures(result.stderr) : result.stderr;
	expect({exitCode: result.exitCode, stderr: stderr.slice(-2000), stdout: result.exitCode === 0 ? '' : result.stdout.slice(-2000)}).toEqual({exitCode: 0, stderr: '', stdout: ''});
	return JSON.parse(result.stdout) as HostSummary;
}

/**
 * The invariants of every host run: typed failures, a death per started VM, nothing left. With
 * `ownDeaths`, a started VMM may also end on its own before the shutdown (one that cannot make its
 * threads): its death still comes, with whatever reason its exit gives.
 */
function expectClean(summary: HostSummary, count: number, ownDeaths = false): void {
	expect(summary.startErrors).toEqual(Array.from({length: count - summary.started}, () => 'VMM_SPAWN_FAILED'));
	expect(summary.deathReasons).toHaveLength(summary.started);
	// A stop command that cannot run is not sent: the VM ends stopped or killed, never lost.
	if (!ownDeaths) {
		expect(summary.deathReasons.filter(reason => reason !== 'SHUTDOWN' && reason !== 'KILLED')).toEqual([]);
	}

	expect({temp: summary.tempEntries, records: summary.records, leaks: summary.leaks}).toEqual({temp: [], records: [], leaks: []});
	expect(summary.pids.filter(pid => !processGone(pid))).toEqual([]);
}

beforeAll(async () => {
	if (!existsSync(SIM_PATH)) {
		throw new Error(`${SIM_PATH} is missing: run npm run build first`);
	}

	// The first spawn creates libuv's signal pipe for good: keep it out of every baseline.
	await execa(process.execPath, ['-e', '0'], {cleanup: false});
});

beforeEach(() => {
	work = mkdtempSync(join(tmpdir(), 'vmwarden-faults-'));
	// World-readable: a host running as another user reads its guests and writes its VMs' dirs here.
	chmodSync(work, 0o1777);
	tempRoot = join(work, 'root');
	stateDir = join(work, 'state');
	mkdirSync(tempRoot);
	chmodSync(tempRoot, 0o1777);
	baseline = takeSnapshot([tempRoot]);
});

afterEach(async () => {
	await supervisor?.shutdown({stopTimeoutMs: 500});
	supervisor = undefined;
	const leaks = await settleLeaks(baseline, existsSync(tempRoot) ? [tempRoot] : []);
	rmSync(work, {recursive: true, force: true});
	expect(leaks).toEqual([]);
});

describe('a host out of resources', () => {
	test('out of descriptors (RLIMIT_NOFILE 64): failed starts are typed and leave nothing; running VMs stay supervised and shut down', async () => {
		const summary = await runHost(['env'], 40, guest('payload started', 'hang'), {limits: '--nofile=64:64'});
		expect(summary.running).toBeGreaterThan(0);
		expect(summary.running).toBeLessThan(40);
		expect(summary.stillRunning).toBe(summary.running);
		expectClean(summary, 40);
	});

	test('out of processes (RLIMIT_NPROC 20 for an unprivileged host): failed spawns are typed and leave nothing', async () => {
		const summary = await runHost(['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups'], 10, guest('payload started', 'hang'), {limits: '--nproc=20'});
		expect(summary.startErrors.length).toBeGreaterThan(0);
		expectClean(summary, 10, true);
	});
});

describe('a file system that fails', () => {
	let mounted: string | undefined;

	/** A tiny tmpfs at `work/fs`, or undefined (with the reason printed) where mounting is refused. */
	async function tmpfs(size: string): Promise<string | undefined> {
		const directory = join(work, 'fs');
		mkdirSync(directory);
		const result = await execa('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', directory], {reject: false});
		if (result.failed) {
			console.warn(`Not run: mount -t tmpfs was refused (${result.stderr.trim()})`);
			return undefined;
		}

		mounted = directory;
		return directory;
	}

	/** Fills the file system at `directory` until it has no byte left. */
	function fill(directory: string): void {
		const chunk = Buffer.alloc(4096);
		try {
			for (let index = 0; ; index++) {
				writeFileSync(join(directory, `filler-${index}`), chunk);
			}
		} catch {
			// ENOSPC: full.
		}
	}

	afterEach(async () => {
		if (mounted !== undefined) {
			await supervisor?.shutdown({stopTimeoutMs: 500});
			await execa('umount', ['-l', mounted], {reject: false});
			mounted = undefined;
		}
	});

	test('the temporary root and the state directory on a full file system: starts fail typed, running VMs shut down', async () => {
		const fs = await tmpfs('64k');
		if (fs === undefined) {
			return;
		}

		tempRoot = join(fs, 'root');
		stateDir = join(fs, 'state');
		mkdirSync(tempRoot, {mode: 0o700});
		const supervisor = supervise();
		const first = await supervisor.createVm({kernel: guest('payload started', 'hang')});
		await first.start();
		// Its guest up before the disk fills: the stop below then reaches a listening control socket.
		await until(() => first.payloadState === 'Started');
		fill(fs);
		const later = await Promise.allSettled(Array.from({length: 3}, async () => supervisor.createVm({kernel: guest('payload started', 'hang')})));
		const created = later.flatMap(result => result.status === 'fulfilled' ? [result.value] : []);
		const createErrors = later.flatMap(result => result.status === 'rejected' ? [result.reason instanceof VmwardenError ? result.reason.code : `untyped: ${String(result.reason)}`] : []);
		const {errors} = await startAll(created);
		// No room for a temporary directory: each later VM fails to start, typed as the host's failure.
		expect([...createErrors, ...errors]).toEqual(['VMM_SPAWN_FAILED', 'VMM_SPAWN_FAILED', 'VMM_SPAWN_FAILED']);
		expect(first.state).toBe('Running');
		const death = first.died;
		// A generous stop timeout: the point is a graceful stop on a full disk, not its speed.
		await supervisor.shutdown({stopTimeoutMs: 10_000});
		expect((await death).reason).toBe('SHUTDOWN');
		expect({temp: readdirSync(tempRoot), records: records()}).toEqual({temp: [], records: []});
	});

	test('the state directory made read-only while VMs run: they still stop, and the next supervisor reaps what could not be removed', async () => {
		const fs = await tmpfs('1m');
		if (fs === undefined) {
			return;
		}

		stateDir = join(fs, 'state');
		// In a host of its own: the lock it cannot remove names it, and only its exit frees the directory.
		const summary = await runHost(['env'], 2, guest('payload started', 'hang'), {readOnlyMount: fs});
		expect({running: summary.running, reasons: summary.deathReasons, temp: summary.tempEntries, leaks: summary.leaks}).toEqual({running: 2, reasons: ['SHUTDOWN', 'SHUTDOWN'], temp: [], leaks: []});
		expect(summary.pids.filter(pid => !processGone(pid))).toEqual([]);
		await execa('mount', ['-o', 'remount,rw', fs]);
		// What could not be removed is the next host's to reap, as after a restart of the host.
		const next = await runHost(['env'], 0, guest('payload started', 'hang'));
		expect({left: summary.records.length, after: next.records}).toEqual({left: 2, after: []});
		expect(records()).toEqual([]);
	});
});

describe('a misbehaving VMM', () => {
	test('a VMM stopped with SIGSTOP is killed once the stop times out', async () => {
		const supervisor = supervise({stopTimeoutMs: 300});
		const vm = await supervisor.createVm({kernel: guest('payload started', 'hang')});
		await vm.start();
		process.kill(vm.pid!, 'SIGSTOP');
		const started = Date.now();
		await vm.stop();
		const death = await vm.died;
		expect(death.reason).toBe('KILLED');
		expect(Date.now() - started).toBeLessThan(5000);
	});

	test('VMMs that ignore SIGTERM or the stop request are killed at shutdown within the stop timeout', async () => {
		const supervisor = supervise();
		const vms = await Promise.all([guest('ignore-sigterm', 'payload started', 'hang'), guest('ignore-stop', 'payload started', 'hang')].map(async kernel => supervisor.createVm({kernel})));
		await Promise.all(vms.map(async vm => vm.start()));
		const deaths = Promise.all(vms.map(async vm => vm.died));
		const started = Date.now();
		await supervisor.shutdown({stopTimeoutMs: 300});
		// Whichever of the stop request and SIGTERM reaches it first may still end one of them cleanly;
		// otherwise it is killed after 300 ms. Either way each has a death, in bounded time.
		expect((await deaths).map(death => death.reason).filter(reason => reason !== 'KILLED' && reason !== 'SHUTDOWN')).toEqual([]);
		expect(Date.now() - started).toBeLessThan(5000);
		expect(records()).toEqual([]);
	});

	test('a stop command that never answers does not outlive the VM it was sent to', async () => {
		// `stop` hangs for far longer than the stop timeout: only cancelling it ends it in time.
		const wrapper = join(work, 'wedged-stop-vmm');
		writeFileSync(wrapper, `#!/bin/bash\nif [ "$1" = stop ]; then exec sleep 30; fi\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(SIM_PATH)} "$@"\n`);
		chmodSync(wrapper, 0o755);
		const supervisor = supervise({crosvmPath: wrapper, stopTimeoutMs: 300});
		const vm = await supervisor.createVm({kernel: guest('ignore-sigterm', 'payload started', 'hang')});
		await vm.start();
		await vm.stop();
		expect((await vm.died).reason).toBe('KILLED');
		// The leak check after the test finds the `sleep` if the stop command was left running.
	});

	test('a VMM whose child keeps its pipes open after it exits still dies within the bounded grace', async () => {
		// The wrapper leaves a `sleep` holding stderr and every channel, then execs the simulator.
		const wrapper = join(work, 'holding-vmm');
		const marker = `vmwarden-faults-holder-${process.pid}`;
		writeFileSync(wrapper, `#!/bin/bash\nexec -a ${marker} sleep 4 &\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(SIM_PATH)} "$@"\n`);
		chmodSync(wrapper, 0o755);
		const supervisor = supervise({crosvmPath: wrapper});
		const vm = await supervisor.createVm({kernel: guest('payload started', 'payload finished 0', 'exit 0')});
		const started = Date.now();
		await vm.start();
		const death = await vm.died;
		expect(death.reason).toBe('SHUTDOWN');
		// Well before the holder's 4 s: the exit, not the end of the pipes, decides the death.
		expect(Date.now() - started).toBeLessThan(3000);
		await supervisor.shutdown();
		// Documented leak: the holder outlives the VMM (vmwarden never owned it); end it here.
		for (const record of descendantsOf(process.pid).values()) {
			if (record.command.includes(marker)) {
				process.kill(record.pid, 'SIGKILL');
			}
		}
	});
});

describe('shutdown under way', () => {
	test('a shutdown while VMs launch, stop and restart, and a second shutdown at once, both resolve', async () => {
		const supervisor = supervise({stopTimeoutMs: 300, restartPolicy: {restart: 'on-failure'}});
		const stopping = await supervisor.createVm({kernel: guest('ignore-stop', 'payload started', 'hang')});
		// One waits out a long backoff; the other restarts at once, again and again.
		const crashing = await supervisor.createVm({kernel: guest('payload started', 'crash')}, {restartPolicy: {restart: 'on-failure', backoff: {initialDelayMs: 10_000}}});
		const flapping = await supervisor.createVm({kernel: guest('payload started', 'crash')}, {restartPolicy: {restart: 'on-failure', backoff: {initialDelayMs: 0}, intensity: {maxRestarts: 1000, windowMs: 60_000}}});
		await Promise.all([stopping.start(), crashing.start(), flapping.start()]);
		await until(() => crashing.supervision === 'backoff' && flapping.restarts > 0);
		const launching = await Promise.all(Array.from({length: 3}, async () => supervisor.createVm({kernel: guest('payload started', 'hang')})));
		const starts = Promise.allSettled(launching.map(async vm => vm.start()));
		void stopping.stop().catch(() => undefined);
		await Promise.all([supervisor.shutdown(), supervisor.shutdown()]);
		const results = await starts;
		// Each launch either ran (and died at shutdown) or failed with a typed error.
		for (const [index, result] of results.entries()) {
			if (result.status === 'rejected') {
				expect(result.reason).toBeInstanceOf(VmwardenError);
			} else {
				// Stopped while it was still booting: it may not answer within 300 ms, and is then killed.
				expect(['SHUTDOWN', 'KILLED']).toContain((await launching[index]!.died).reason);
			}
		}

		await expect(stopping.died).resolves.toMatchObject({reason: 'KILLED'});
		// Shut down in its backoff: cancelled; mid-restart: cancelled, or ended if its next life had begun.
		expect(crashing.supervision).toBe('cancelled');
		expect(['cancelled', 'ended']).toContain(flapping.supervision);
		expect(supervisor.vms().map(vm => vm.state).filter(state => state !== 'Dead' && state !== 'Failed')).toEqual([]);
		expect(records()).toEqual([]);
		// A shutdown after the shutdown resolves too.
		await supervisor.shutdown();
	});
});
