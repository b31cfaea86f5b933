/**
 * The supervisor with real VMs on crosvm-sim (built by `npm run build`): stopping, shutting a fleet
 * down without leaving anything behind (checked through /proc and the file system), and a host
 * killed with SIGKILL taking its VMs with it.
 */
import {existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join, resolve} from 'node:path';
import {execa} from 'execa';
import winston from 'winston';
import {isProcessRunning, processIdentity, waitForProcessExit, type ProcessIdentity} from '../../src/services/state-dir/process-identity.js';
import {SupervisorShutDownError} from '../../src/errors.js';
import {createSupervisor, type Supervisor, type SupervisorEvent} from '../../src/supervisor.js';
import type {Vm} from '../../src/vm.js';
import {until} from '../helpers/until.js';
import {settleLeaks, takeSnapshot} from '../helpers/leak-checker.js';

const SIM_PATH = process.env['VMWARDEN_TEST_VMM'] ?? resolve('dist/crosvm-sim/cli.js');
const logger = winston.createLogger({silent: true});

let work: string;
let tempRoot: string;
let stateDir: string;
let supervisor: Supervisor | undefined;

function guest(...directives: string[]): string {
	const file = join(work, `guest-${Math.random().toString(36).slice(2)}`);
	writeFileSync(file, ['#!crosvm-sim-guest', ...directives, ''].join('\n'));
	return file;
}

function supervise(options: Parameters<typeof createSupervisor>[0] = {}): {supervisor: Supervisor; events: SupervisorEvent[]} {
	const created = createSupervisor({crosvmPath: SIM_PATH, tempRoot, stateDir, logger, stopTimeoutMs: 5000, ...options});
	supervisor = created;
	const events: SupervisorEvent[] = [];
	created.events$.subscribe(event => events.push(event));
	return {supervisor: created, events};
}

beforeAll(async () => {
	if (!existsSync(SIM_PATH)) {
		throw new Error(`${SIM_PATH} is missing: run npm run build first`);
	}

	// The first spawn creates libuv's signal pipe for good: keep it out of every baseline.
	await execa(process.execPath, ['-e', '0']);
});

beforeEach(() => {
	work = mkdtempSync(join(tmpdir(), 'vmwarden-fleet-test-'));
	tempRoot = mkdtempSync(join(tmpdir(), 'vmwarden-fleet-root-'));
	stateDir = join(work, 'state');
});

afterEach(async () => {
	await supervisor?.shutdown({stopTimeoutMs: 500});
	supervisor = undefined;
	rmSync(work, {recursive: true, force: true});
	rmSync(tempRoot, {recursive: true, force: true});
});

describe('stopping', () => {
	test('a graceful stop gives SHUTDOWN; a guest that ignores it is KILLED after the timeout', async () => {
		const {supervisor} = supervise();
		const polite = await supervisor.createVm({kernel: guest('payload started', 'hang')});
		const wedged = await supervisor.createVm({kernel: guest('ignore-stop', 'hang')});
		await Promise.all([polite.start(), wedged.start()]);

		const stoppedAt = Date.now();
		const [politeDeath, wedgedDeath] = await Promise.all([polite.stop({timeoutMs: 5000}), wedged.stop({timeoutMs: 400})]);
		expect(politeDeath).toMatchObject({reason: 'SHUTDOWN', initiator: 'caller'});
		expect(wedgedDeath).toMatchObject({reason: 'KILLED', signal: 'SIGKILL', initiator: 'caller'});
		expect(Date.now() - stoppedAt).toBeGreaterThanOrEqual(400);
	});

	test('a supervisor actor stopped by hand takes its running VMs with it', async () => {
		const {supervisor} = supervise();
		const vms = await Promise.all([supervisor.createVm({kernel: guest('hang')}), supervisor.createVm({kernel: guest('hang')})]);
		await Promise.all(vms.map(async vm => vm.start()));
		const identities = vms.map(vm => processIdentity(vm.pid!)!);
		supervisor.actor.stop();
		const deaths = await Promise.all(vms.map(async vm => vm.died));
		expect(deaths.map(death => [death.reason, death.initiator])).toEqual([['KILLED', 'supervisor'], ['KILLED', 'supervisor']]);
		expect(identities.filter(identity => isProcessRunning(identity))).toEqual([]);
	});

	test('a restartable VM of a supervisor actor stopped by hand is over with its killed life: stop() resolves, no restart', async () => {
		const {supervisor} = supervise();
		const vm = await supervisor.createVm({kernel: guest('hang')}, {restartPolicy: {restart: 'always'}});
		let completed = false;
		vm.events$.subscribe({
			complete() {
				completed = true;
			},
		});
		await vm.start();
		supervisor.actor.stop();
		expect(await vm.died).toMatchObject({reason: 'KILLED', initiator: 'supervisor'});
		await expect(vm.stop()).resolves.toMatchObject({reason: 'KILLED'});
		expect([vm.supervision, vm.restarts, completed]).toEqual(['ended', 0, true]);
	});

	test('a CID is released only after its VM is dead and cleaned up, and its record removed', async () => {
		const {supervisor, events} = supervise();
		const vm = await supervisor.createVm({kernel: guest('payload started', 'sleep 200', 'poweroff')});
		await vm.start();
		const record = JSON.parse(readFileSync(join(stateDir, 'vms', `${vm.cid}.json`), 'utf8')) as {pid: number; startTime: string; tempDir: string};
		expect(record).toMatchObject({pid: vm.pid, startTime: processIdentity(vm.pid!)!.startTime, tempDir: vm.tempDir});

		const seenAtRelease: Array<{state: string; tempDirExists: boolean; recordExists: boolean}> = [];
		supervisor.actor.on('supervisor.cid.released', () => {
			seenAtRelease.push({state: vm.state, tempDirExists: existsSync(record.tempDir), recordExists: existsSync(join(stateDir, 'vms', `${vm.cid}.json`))});
		});
		expect((await vm.died).reason).toBe('SHUTDOWN');
		await new Promise(resolve => {
			setTimeout(resolve, 50);
		});
		expect(seenAtRelease).toEqual([{state: 'Dead', tempDirExists: false, recordExists: false}]);
		const types = events.map(event => event.type);
		expect(types.indexOf('died')).toBeLessThan(types.indexOf('supervisor.cid.released'));
		expect(supervisor.get(vm.cid)).toBeUndefined();
	});
});

describe('shutdown', () => {
	test('50 VMs are stopped in parallel, leaving no process, descriptor, CID, record or temp dir', async () => {
		const baseline = takeSnapshot([tempRoot]);
		// A generous stop timeout: the point is fifty graceful stops at once, and on a loaded machine
		// fifty simulator processes (Node, each with its own stop client) take seconds to end.
		const {supervisor, events} = supervise({stopTimeoutMs: 30_000});
		const kernel = guest('payload started', 'payload ready', 'hang');
		const vms = await Promise.all(Array.from({length: 50}, async () => supervisor.createVm({kernel})));
		await Promise.all(vms.map(async vm => vm.start()));
		expect(new Set(vms.map(vm => vm.cid)).size).toBe(50);
		expect(readdirSync(join(stateDir, 'vms'))).toHaveLength(50);

		await supervisor.shutdown();

		const deaths = await Promise.all(vms.map(async vm => vm.died));
		expect(deaths.filter(death => death.reason !== 'SHUTDOWN' || death.initiator !== 'supervisor')).toEqual([]);
		expect(supervisor.vms()).toEqual([]);
		expect(events.filter(event => event.type === 'supervisor.cid.released')).toHaveLength(50);
		expect(events.at(-1)?.type).toBe('supervisor.shutdown.completed');
		expect(readdirSync(join(stateDir, 'vms'))).toEqual([]);
		expect(await settleLeaks(baseline, [tempRoot])).toEqual([]);
	}, 90_000);
});

describe('creating VMs from callbacks', () => {
	test('a VM created synchronously inside an events$ subscriber runs', async () => {
		const {supervisor} = supervise();
		const kernel = guest('payload started', 'hang');
		let created: Promise<Vm> | undefined;
		supervisor.events$.subscribe(event => {
			if (event.type === 'started' && created === undefined) {
				created = supervisor.createVm({kernel});
			}
		});
		const first = await supervisor.createVm({kernel});
		await first.start();
		await until(() => created !== undefined);
		const second = await created!;
		await second.start();
		expect(second.state).toBe('Running');
		expect(second.cid).toBe(first.cid + 1);
		expect(isProcessRunning(processIdentity(second.pid!)!)).toBe(true);
	});

	test('a VM created inside an onDied callback runs', async () => {
		const {supervisor} = supervise();
		const first = await supervisor.createVm({kernel: guest('poweroff')});
		let replacement: Promise<Vm> | undefined;
		first.onDied(() => {
			replacement = supervisor.createVm({kernel: guest('payload started', 'hang')});
		});
		await first.start();
		expect((await first.died).reason).toBe('SHUTDOWN');
		await until(() => replacement !== undefined);
		const vm = await replacement!;
		await vm.start();
		expect(vm.state).toBe('Running');
		expect(isProcessRunning(processIdentity(vm.pid!)!)).toBe(true);
	});
});

describe('after shutdown', () => {
	test('createVm and the start of a never-started VM are refused with SupervisorShutDownError; running VMs were stopped', async () => {
		const {supervisor} = supervise();
		const running = await supervisor.createVm({kernel: guest('payload started', 'hang')});
		const unstarted = await supervisor.createVm({kernel: guest('payload started', 'hang')});
		await running.start();
		const shutdown = supervisor.shutdown();
		// Refused as soon as the supervisor drains, not only once it has shut down.
		await expect(unstarted.start()).rejects.toBeInstanceOf(SupervisorShutDownError);
		await shutdown;
		expect(await running.died).toMatchObject({reason: 'SHUTDOWN', initiator: 'supervisor'});
		await expect(supervisor.createVm({kernel: guest('poweroff')})).rejects.toBeInstanceOf(SupervisorShutDownError);
		await expect(unstarted.start()).rejects.toBeInstanceOf(SupervisorShutDownError);
		expect(unstarted.pid).toBeUndefined();
		expect(readdirSync(tempRoot)).toEqual([]);
	});
});

describe('state that cannot be written', () => {
	test('a last CID that cannot be written leaves the supervisor working, and shutdown stops its running VMs', async () => {
		mkdirSync(join(stateDir, 'last-cid', 'in-the-way'), {recursive: true});
		const {supervisor, events} = supervise();
		const vms = await Promise.all([supervisor.createVm({kernel: guest('payload started', 'hang')}), supervisor.createVm({kernel: guest('payload started', 'hang')})]);
		await Promise.all(vms.map(async vm => vm.start()));
		expect(vms.map(vm => vm.state)).toEqual(['Running', 'Running']);
		expect(supervisor.actor.getSnapshot().status).toBe('active');
		await until(() => events.filter(event => event.type === 'supervisor.state.writeFailed').length === 2);
		expect(events.filter(event => event.type === 'supervisor.state.writeFailed')).toEqual(vms.map((vm): unknown => expect.objectContaining({write: 'last-cid', cid: vm.cid, initiator: 'supervisor'})));

		const identities = vms.map(vm => processIdentity(vm.pid!)!);
		await supervisor.shutdown();
		expect((await Promise.all(vms.map(async vm => vm.died))).map(death => [death.reason, death.initiator])).toEqual([['SHUTDOWN', 'supervisor'], ['SHUTDOWN', 'supervisor']]);
		expect(identities.some(identity => isProcessRunning(identity))).toBe(false);
		// The lock is given back only now, with nothing left running.
		expect(existsSync(join(stateDir, 'supervisor.lock'))).toBe(false);
	});
});

describe('never leaving a VM behind', () => {
	test('a host killed with SIGKILL takes its VMs with it; the next supervisor cleans up after it', async () => {
		const count = 3;
		const host = execa(process.execPath, ['--import', 'tsx', resolve('test/helpers/hosts/supervisor-host.ts'), SIM_PATH, tempRoot, stateDir, guest('payload started', 'hang'), String(count)], {reject: false, buffer: false, stdout: 'pipe', stderr: 'inherit'});
		const line = await new Promise<string>((resolvePromise, reject) => {
			let text = '';
			host.stdout.on('data', (chunk: Buffer) => {
				text += chunk.toString();
				if (text.includes('\n')) {
					resolvePromise(text.slice(0, text.indexOf('\n')));
				}
			});
			void host.then(() => {
				reject(new Error(`host exited before starting its VMs: ${text}`));
			});
		});
		const started = JSON.parse(line) as Array<{cid: number; pid: number; tempDir: string}>;
		expect(started).toHaveLength(count);
		const identities = started.map(vm => processIdentity(vm.pid)).filter((identity): identity is ProcessIdentity => identity !== undefined);
		expect(identities).toHaveLength(count);
		// The VMs are the children of the host's spawner process, as /proc shows.
		const parentOf = (pid: number) => Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]);
		for (const {pid} of started) {
			expect(parentOf(parentOf(pid))).toBe(host.pid);
		}

		host.kill('SIGKILL');
		await host;
		const gone = await Promise.all(identities.map(async identity => waitForProcessExit(identity, {timeoutMs: 5000})));
		expect(gone).toEqual(identities.map(() => true));
		expect(identities.some(identity => isProcessRunning(identity))).toBe(false);
		// The host died before it could clean up: its temp dirs and records are still there...
		expect(started.every(vm => existsSync(vm.tempDir))).toBe(true);

		// ...until the next supervisor takes the state directory over.
		const {supervisor: next, events} = supervise();
		await next.reaped;
		await new Promise(resolvePromise => {
			setImmediate(resolvePromise);
		});
		const reaped = events.filter(event => event.type === 'supervisor.staleVm.reaped');
		expect(reaped.map(event => (event as {cid: number}).cid).sort()).toEqual(started.map(vm => vm.cid).sort());
		expect(reaped.every(event => (event as {outcome: string}).outcome === 'gone')).toBe(true);
		expect(readdirSync(tempRoot)).toEqual([]);
		expect(readdirSync(join(stateDir, 'vms'))).toEqual([]);
		// Its CIDs are free again, and the next one follows the host's last.
		expect((await next.createVm({kernel: guest('poweroff')})).cid).toBe(Math.max(...started.map(vm => vm.cid)) + 1);
	});
});
