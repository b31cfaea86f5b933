import {existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {execa, type ResultPromise} from 'execa';
import {jest} from '@jest/globals';
import {config as rxjsConfig, map} from 'rxjs';
import winston from 'winston';
import {defaultBootHangupTimeoutMs, NESTED_BOOT_HANGUP_TIMEOUT_MS} from '../../src/services/config/boot-timeout.js';
import {InvalidConfigError, NoAvailableCidError, SupervisorShutDownError} from '../../src/errors.js';
import {isProcessRunning, processIdentity} from '../../src/services/state-dir/process-identity.js';
import {writeVmRecord} from '../../src/services/state-dir/records.js';
import {createTempDir} from '../../src/services/vmm/temp-dir.js';
import {createSupervisor, type Supervisor, type SupervisorEvent} from '../../src/supervisor.js';
import {expectInvalid} from '../helpers/expect-invalid.js';
import type {Vm} from '../../src/vm.js';

const logger = winston.createLogger({silent: true});
const folders: string[] = [];
const sleepers: ResultPromise[] = [];
const supervisors: Supervisor[] = [];

function makeFolder(): string {
	const folder = mkdtempSync(join(tmpdir(), 'vmwarden-supervisor-test-'));
	folders.push(folder);
	return folder;
}

function supervise(options: Parameters<typeof createSupervisor>[0] = {}): {supervisor: Supervisor; events: SupervisorEvent[]} {
	const supervisor = createSupervisor({logger, crosvmPath: '/nonexistent/crosvm', ...options});
	supervisors.push(supervisor);
	const events: SupervisorEvent[] = [];
	supervisor.events$.subscribe(event => events.push(event));
	return {supervisor, events};
}

afterEach(async () => {
	await Promise.all(supervisors.splice(0).map(async supervisor => supervisor.shutdown()));
	for (const sleeper of sleepers.splice(0)) {
		sleeper.kill('SIGKILL');
		await sleeper;
	}

	for (const folder of folders.splice(0)) {
		rmSync(folder, {recursive: true, force: true});
	}
});

// A real file: validation checks that the kernel exists. The VMM is missing, so nothing ever runs.
const kernelFolder = mkdtempSync(join(tmpdir(), 'vmwarden-supervisor-kernel-'));
const kernelConfig = {kernel: join(kernelFolder, 'kernel')};
writeFileSync(kernelConfig.kernel, '#!crosvm-sim-guest\npoweroff\n');
afterAll(() => {
	rmSync(kernelFolder, {recursive: true, force: true});
});

describe('createSupervisor', () => {
	test('a console-like logger gets vmwarden\'s lines at logLevel, among them which boot hang-up default applies', async () => {
		const lines: string[] = [];
		const collect = (level: string) => (message: string) => lines.push(`${level} ${message}`);
		const supervisor = createSupervisor({logger: {error: collect('error'), warn: collect('warn'), info: collect('info'), debug: collect('debug')}, logLevel: 'debug'});
		await supervisor.shutdown();
		const nested = defaultBootHangupTimeoutMs() === NESTED_BOOT_HANGUP_TIMEOUT_MS;
		expect(lines).toContain(`debug Boot hang-up timeout ${defaultBootHangupTimeoutMs()} ms: the default ${nested ? 'under nested virtualization (this host is a VM)' : 'on bare metal'}; set bootHangupTimeoutMs to change it`);
		const quiet: string[] = [];
		await createSupervisor({logger: {error: collect('error'), warn: collect('warn'), info: collect('info'), debug: message => quiet.push(message)}}).shutdown();
		expect(quiet).toEqual([]);
	});

	test('refuses a bad cidRange, naming it', () => {
		expect(() => createSupervisor({logger, cidRange: {first: 100, last: 50}})).toThrow(InvalidConfigError);
		expect(() => createSupervisor({logger, cidRange: {first: 100, last: 50}})).toThrow(/cidRange/);
	});

	test('refuses a bad vmmEnvironment, naming the variable, before it holds anything', () => {
		expect(() => createSupervisor({logger, vmmEnvironment: {PATH: '/bin', SECRET: 42 as unknown as string}})).toThrow(expect.objectContaining({name: 'InvalidConfigError', field: 'vmmEnvironment.SECRET', reason: 'must be a string'}) as Error);
	});

	test('hands out CIDs in order, wraps past held ones, and refuses when exhausted', async () => {
		const {supervisor} = supervise({cidRange: {first: 10, last: 12}});
		const vms = await Promise.all([supervisor.createVm(kernelConfig), supervisor.createVm(kernelConfig), supervisor.createVm(kernelConfig)]);
		expect(vms.map(vm => vm.cid)).toEqual([10, 11, 12]);
		await expect(supervisor.createVm(kernelConfig)).rejects.toThrow(NoAvailableCidError);
		expect(supervisor.vms().map(vm => vm.cid)).toEqual([10, 11, 12]);
		expect(supervisor.get(11)).toBe(vms[1]);
	});

	test('an invalid config rejects with InvalidConfigError and holds no CID', async () => {
		const {supervisor} = supervise({cidRange: {first: 10, last: 10}});
		await expect(supervisor.createVm({memoryMib: -1})).rejects.toThrow(InvalidConfigError);
		expect(supervisor.vms()).toEqual([]);
		// The range holds one CID: it is still free.
		expect((await supervisor.createVm(kernelConfig)).cid).toBe(10);
	});

	test('a VM that fails to start releases its CID once it is Failed and cleaned up', async () => {
		const tempRoot = makeFolder();
		const {supervisor, events} = supervise({cidRange: {first: 10, last: 10}, tempRoot});
		const vm = await supervisor.createVm(kernelConfig);
		const seen: string[] = [];
		vm.events$.subscribe({next: event => seen.push(event.type), complete: () => seen.push('complete')});
		await expect(vm.start()).rejects.toMatchObject({code: 'VMM_NOT_FOUND'});
		await new Promise(resolve => {
			setImmediate(resolve);
		});
		expect(events.map(event => event.type)).toEqual(['supervisor.cid.allocated', 'failed', 'supervisor.cid.released']);
		expect(supervisor.get(10)).toBeUndefined();
		// Its events$ completed with the failure, as a standalone VM's does.
		expect(seen).toEqual(['failed', 'complete']);
		expect((await supervisor.createVm(kernelConfig)).cid).toBe(10);
		expect(readdirSync(tempRoot)).toEqual([]);
	});

	test('createVm after shutdown is refused with a typed error', async () => {
		const {supervisor, events} = supervise();
		const unstarted = await supervisor.createVm(kernelConfig);
		await supervisor.shutdown();
		await expect(supervisor.createVm(kernelConfig)).rejects.toThrow(SupervisorShutDownError);
		await expect(unstarted.start()).rejects.toBeInstanceOf(SupervisorShutDownError);
		expect(events.map(event => event.type)).toEqual([
			'supervisor.cid.allocated',
			'supervisor.shutdown.started',
			'supervisor.cid.released',
			'supervisor.shutdown.completed',
		]);
		expect(supervisor.vms()).toEqual([]);
	});

	test('restart and group policies are checked field by field, and a refused one holds nothing', async () => {
		expectInvalid(() => createSupervisor({logger, restartPolicy: {restart: 'sometimes' as never}}), 'restartPolicy.restart', 'must be one of never, on-failure, always, not "sometimes"', 'option');
		const {supervisor} = supervise({cidRange: {first: 10, last: 10}});
		await expect(supervisor.createVm(kernelConfig, {restartPolicy: {backoff: {jitter: 5}}})).rejects.toMatchObject({code: 'INVALID_CONFIG', field: 'restartPolicy.backoff.jitter'});
		await expect(supervisor.createGroup({strategy: 'all' as never})).rejects.toMatchObject({code: 'INVALID_CONFIG', field: 'groupPolicy.strategy'});
		await expect(supervisor.createGroup({intensity: {windowMs: -1}})).rejects.toMatchObject({code: 'INVALID_CONFIG', field: 'groupPolicy.intensity.windowMs'});
		expect(supervisor.vms()).toEqual([]);
		expect((await supervisor.createVm(kernelConfig)).cid).toBe(10);
	});

	test('a restarting VM whose first start fails is not restarted: the caller has the error, the CID goes back', async () => {
		const {supervisor, events} = supervise({cidRange: {first: 10, last: 10}, restartPolicy: {restart: 'always', backoff: {initialDelayMs: 0}}});
		const vm = await supervisor.createVm(kernelConfig);
		expect(vm.supervision).toBe('idle');
		await expect(vm.start()).rejects.toMatchObject({code: 'VMM_NOT_FOUND'});
		await new Promise(resolve => {
			setImmediate(resolve);
		});
		expect(events.map(event => event.type)).toEqual(['supervisor.cid.allocated', 'failed', 'supervisor.cid.released']);
		expect(vm.supervision).toBe('ended');
		expect(vm.restarts).toBe(0);
	});

	test('shutdown discards never-started VMs with their restart machines and groups, and refuses new groups', async () => {
		const {supervisor, events} = supervise({restartPolicy: {restart: 'on-failure'}});
		const alone = await supervisor.createVm(kernelConfig);
		const group = await supervisor.createGroup({strategy: 'one-for-all'});
		const member = await group.createVm(kernelConfig);
		expect(member.group).toBe(group.id);
		await supervisor.shutdown();
		expect(supervisor.actor.getSnapshot().context.vms.size).toBe(0);
		// Only the guard that would end the fleet if the actor were stopped by hand.
		expect(Object.keys(supervisor.actor.getSnapshot().children)).toEqual(['fleetGuard']);
		expect(group.state).toBe('done');
		expect([alone.cid, member.cid].map(cid => events.filter(event => event.type === 'supervisor.cid.released' && event.cid === cid).length)).toEqual([1, 1]);
		await expect(supervisor.createGroup()).rejects.toBeInstanceOf(SupervisorShutDownError);
	});

	test('a subscriber may create a VM from inside its callback', async () => {
		const {supervisor} = supervise();
		const created: Array<Promise<Vm>> = [];
		supervisor.events$.subscribe(event => {
			if (event.type === 'supervisor.cid.allocated' && created.length < 2) {
				created.push(supervisor.createVm(kernelConfig));
			}
		});
		await supervisor.createVm(kernelConfig);
		await new Promise(resolve => {
			setImmediate(resolve);
		});
		expect((await Promise.all(created)).map(vm => vm.cid)).toEqual([2049, 2050]);
	});
});

describe('hostile input', () => {
	test('an events$ subscriber that throws is logged and never reaches the host; the others still get every event', async () => {
		const errors: string[] = [];
		const capturing = winston.createLogger({silent: true});
		capturing.error = ((message: string) => {
			errors.push(message);
			return capturing;
		}) as typeof capturing.error;
		const unhandled: unknown[] = [];
		// Where rxjs sends what a subscriber throws, on a timer; without a handler it is rethrown there
		// and ends the process.
		rxjsConfig.onUnhandledError = error => unhandled.push(error);
		try {
			const {supervisor, events} = supervise({logger: capturing});
			supervisor.events$.subscribe(() => {
				throw new Error('direct subscriber');
			});
			supervisor.events$.pipe(map(event => event.type)).subscribe({
				next() {
					throw new Error('piped subscriber');
				},
			});
			supervisor.events$.pipe(map(() => {
				throw new Error('piped operator');
			})).subscribe(() => undefined);
			await supervisor.createVm(kernelConfig);
			await supervisor.createVm(kernelConfig);
			await new Promise(resolve => {
				setTimeout(resolve, 10);
			});
			expect(unhandled).toEqual([]);
			expect(events.map(event => event.type)).toEqual(['supervisor.cid.allocated', 'supervisor.cid.allocated']);
			expect(errors.filter(message => message.includes('direct subscriber'))).toHaveLength(2);
			expect(errors.filter(message => message.includes('piped subscriber'))).toHaveLength(2);
			// An operator that throws ends its own subscription (rxjs semantics): reported once.
			expect(errors.filter(message => message.includes('piped operator'))).toHaveLength(1);
		} finally {
			rxjsConfig.onUnhandledError = null;
		}
	});

	test.each([-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 31, '5', null])('shutdown({stopTimeoutMs: %p}) rejects with InvalidConfigError and shuts nothing down', async stopTimeoutMs => {
		const {supervisor} = supervise();
		await expect(supervisor.shutdown({stopTimeoutMs: stopTimeoutMs as number})).rejects.toMatchObject({code: 'INVALID_CONFIG', field: 'stopTimeoutMs'});
		expect((await supervisor.createVm(kernelConfig)).cid).toBe(2048);
	});

	test('shutdown takes stopTimeoutMs from 0 to 2^31 - 1', async () => {
		await supervise().supervisor.shutdown({stopTimeoutMs: 0});
		await supervise().supervisor.shutdown({stopTimeoutMs: (2 ** 31) - 1});
	});

	test.each([
		['stopTimeoutMs', {stopTimeoutMs: -5}],
		['bootHangupTimeoutMs', {bootHangupTimeoutMs: 2 ** 40}],
	] as const)('createSupervisor refuses a bad %s, naming it', (field, options) => {
		expect(() => createSupervisor({logger, ...options})).toThrow(InvalidConfigError);
		expect(() => createSupervisor({logger, ...options})).toThrow(`Invalid option: ${field}: `);
	});

	test.each([
		['payloadChannel', {payloadChannel: 'yes'}],
		['requester', {requester: {uid: 'root', sid: '', debugPid: 1}}],
		['requester', {requester: null}],
	] as const)('createVm refuses a bad %s with InvalidConfigError and holds no CID', async (field, options) => {
		const {supervisor, events} = supervise({cidRange: {first: 10, last: 10}});
		await expect(supervisor.createVm(kernelConfig, options as never)).rejects.toMatchObject({code: 'INVALID_CONFIG', field});
		expect((await supervisor.createVm(kernelConfig)).cid).toBe(10);
		expect(events.filter(event => event.type === 'supervisor.cid.allocated')).toHaveLength(1);
	});

	test('createSupervisor failing after it took the state directory gives the directory back', () => {
		const stateDir = makeFolder();
		// The inspector is called while the actor starts, after the lock is taken.
		const inspect = () => {
			throw new Error('inspector broke');
		};
		expect(() => createSupervisor({logger, stateDir, inspect})).toThrow('inspector broke');
		expect(existsSync(join(stateDir, 'supervisor.lock'))).toBe(false);

		supervise({stateDir});
		expect(existsSync(join(stateDir, 'supervisor.lock'))).toBe(true);
	});

	test('an entry in stateDir/vms that is no record is left alone and logged, and the supervisor starts', async () => {
		const stateDir = makeFolder();
		mkdirSync(join(stateDir, 'vms', 'not-a-record'), {recursive: true});
		const warnings = jest.spyOn(logger, 'warn');
		const {supervisor} = supervise({stateDir});
		await supervisor.reaped;
		expect(existsSync(join(stateDir, 'vms', 'not-a-record'))).toBe(true);
		expect(warnings).toHaveBeenCalledWith(expect.stringContaining('not-a-record is no record of ours: left alone'));
		warnings.mockRestore();
	});
});

describe('a supervisor actor stopped by hand', () => {
	test('refuses every later request, resolves shutdown and gives the state directory back', async () => {
		const stateDir = makeFolder();
		const {supervisor} = supervise({stateDir});
		const vm = await supervisor.createVm(kernelConfig);
		supervisor.actor.stop();
		await expect(supervisor.createVm(kernelConfig)).rejects.toBeInstanceOf(SupervisorShutDownError);
		await expect(vm.start()).rejects.toBeInstanceOf(SupervisorShutDownError);
		await supervisor.shutdown();
		expect(existsSync(join(stateDir, 'supervisor.lock'))).toBe(false);
	});
});

describe('state directory', () => {
	test('a second supervisor continues after the last CID the first allocated', async () => {
		const stateDir = makeFolder();
		const first = supervise({stateDir}).supervisor;
		expect((await Promise.all([first.createVm(kernelConfig), first.createVm(kernelConfig)])).map(vm => vm.cid)).toEqual([2048, 2049]);
		await first.shutdown();

		const second = supervise({stateDir}).supervisor;
		expect((await second.createVm(kernelConfig)).cid).toBe(2050);
	});

	test('a state directory owned by a live supervisor is refused', () => {
		const stateDir = makeFolder();
		supervise({stateDir});
		expect(() => createSupervisor({logger, stateDir})).toThrow(/stateDir/);
	});

	test('a previous instance\'s VMs are reaped: killed, temp dir removed, CID freed and reported; a reused PID is left alone', async () => {
		const stateDir = makeFolder();
		const tempRoot = makeFolder();
		const start = async (cid: number) => {
			// As a VMM would be: in a temporary directory vmwarden made, and naming it in its argv.
			const tempDir = await createTempDir(tempRoot, cid);
			const sleeper = execa('sleep', ['600'], {reject: false, argv0: join(tempDir, 'crosvm.sock')});
			sleepers.push(sleeper);
			return {sleeper, identity: processIdentity(sleeper.pid!)!, tempDir};
		};

		const stale = await start(2048);
		const unrelated = await start(2049);
		writeVmRecord(stateDir, {cid: 2048, pid: stale.identity.pid, startTime: stale.identity.startTime, tempDir: stale.tempDir, supervisorPid: 1});
		writeVmRecord(stateDir, {cid: 2049, pid: unrelated.identity.pid, startTime: `${unrelated.identity.startTime}0`, tempDir: unrelated.tempDir, supervisorPid: 1});

		const {supervisor, events} = supervise({stateDir, tempRoot, cidRange: {first: 2048, last: 2049}});
		// Both CIDs are held until reaped.
		await expect(supervisor.createVm(kernelConfig)).rejects.toThrow(NoAvailableCidError);
		await supervisor.reaped;
		await new Promise(resolve => {
			setImmediate(resolve);
		});

		expect(isProcessRunning(stale.identity)).toBe(false);
		expect(isProcessRunning(unrelated.identity)).toBe(true);
		expect(existsSync(stale.tempDir)).toBe(false);
		expect(readdirSync(join(stateDir, 'vms'))).toEqual([]);
		const reaped = events.filter(event => event.type === 'supervisor.staleVm.reaped');
		expect(reaped).toEqual([
			expect.objectContaining({cid: 2048, pid: stale.identity.pid, outcome: 'killed', initiator: 'supervisor', tempDirRemoved: true}),
			expect.objectContaining({cid: 2049, pid: unrelated.identity.pid, outcome: 'pid-reused', initiator: 'supervisor'}),
		]);
		expect((await Promise.all([supervisor.createVm(kernelConfig), supervisor.createVm(kernelConfig)])).map(vm => vm.cid).sort()).toEqual([2048, 2049]);
	});
});
