/**
 * Every timing path of the supervisor machine in milliseconds: the VMs are a fake machine with the
 * VM machine's outline, the reaper a promise the test settles, and time a simulated clock.
 */
import {existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {jest} from '@jest/globals';
import {assign, createActor, fromPromise, setup, SimulatedClock, waitFor, type ActorRefFrom} from 'xstate';
import winston from 'winston';
import {isCidHeld} from '../../src/services/cids/allocator.js';
import {LAST_CID_FILE} from '../../src/services/cids/store.js';
import {crosvmDriver} from '../../src/services/crosvm/driver.js';
import {VM_RECORDS_DIR, type StaleVmEntry} from '../../src/services/state-dir/records.js';
import type {StaleVmReport} from '../../src/services/state-dir/reap.js';
import {STOP_BATCH_SIZE, supervisorMachine, vmActorId, type SupervisorMachineEmitted, type SupervisorMachineInput, type SupervisorReply} from '../../src/machines/supervisor.machine.js';
import {NoAvailableCidError, SupervisorShutDownError} from '../../src/errors.js';
import {defaultVmmEnvironment} from '../../src/services/vmm/vmm-environment.js';

/** How long the fake VM takes to launch, on the simulated clock. */
const LAUNCH_MS = 50;

/** Asserts that `reply` refuses its request with an error of `errorClass`. */
function expectRefused(reply: SupervisorReply, errorClass: new (...args: never[]) => Error): void {
	expect(reply.type).toBe('supervisor.vm.refused');
	expect(reply.type === 'supervisor.vm.refused' ? reply.error : undefined).toBeInstanceOf(errorClass);
}

/**
 * A stand-in for the VM machine with its outline (NotStarted.idle/launching, Running, final Dead and
 * Failed) and one difference that makes cleanup observable: after STOP it stays in CleaningUp until
 * CLEANED. A STOP while launching is carried out once running, as the VM machine does. Its pid is
 * this process's, so the supervisor finds a live process to record.
 */
const fakeVmMachine = setup({
	types: {
		context: {} as {cid: number; pid: number | undefined; tempDir: string | undefined; stopTimeoutMs: number | undefined; stopInitiator: string | undefined},
		input: {} as {cid: number},
		events: {} as {type: 'START'} | {type: 'STOP'; timeoutMs?: number; initiator?: string} | {type: 'CLEANED'} | {type: 'LAUNCH.FAIL'} | {type: 'BREAK'},
	},
	actions: {
		noteStop: assign(({event}) => (event.type === 'STOP' ? {stopTimeoutMs: event.timeoutMs, stopInitiator: event.initiator} : {})),
		recordLaunch: assign(() => ({pid: process.pid, tempDir: '/tmp/fake-vm'})),
		breakDown() {
			throw new Error('the fake VM broke');
		},
	},
	guards: {
		stopRequested: ({context}) => context.stopInitiator !== undefined,
	},
	delays: {launch: LAUNCH_MS},
}).createMachine({
	id: 'fake',
	context: ({input}) => ({cid: input.cid, pid: undefined, tempDir: undefined, stopTimeoutMs: undefined, stopInitiator: undefined}),
	initial: 'NotStarted',
	on: {BREAK: {actions: 'breakDown'}},
	states: {
		NotStarted: {
			initial: 'idle',
			states: {
				idle: {on: {START: 'launching'}},
				launching: {
					after: {launch: {target: '#fake.Running', actions: 'recordLaunch'}},
					on: {STOP: {actions: 'noteStop'}, 'LAUNCH.FAIL': '#fake.Failed'},
				},
			},
		},
		Running: {
			always: {guard: 'stopRequested', target: 'CleaningUp'},
			on: {STOP: {target: 'CleaningUp', actions: 'noteStop'}},
		},
		CleaningUp: {on: {CLEANED: 'Dead'}},
		Dead: {type: 'final'},
		Failed: {type: 'final'},
	},
});

/** A reaper whose result the test decides. */
function controlledReaper() {
	let settle!: {resolve(reaped: StaleVmReport[]): void; reject(error: Error): void};
	const promise = new Promise<StaleVmReport[]>((resolve, reject) => {
		settle = {resolve, reject};
	});
	const calls: Array<{stateDir: string; entries: StaleVmEntry[]}> = [];
	const logic = fromPromise<StaleVmReport[], {stateDir: string; entries: StaleVmEntry[]}>(async ({input}) => {
		calls.push(input);
		return promise;
	});
	return {logic, calls, settle};
}

const folders: string[] = [];
afterEach(() => {
	for (const folder of folders.splice(0)) {
		rmSync(folder, {recursive: true, force: true});
	}
});

function makeStateDir(): string {
	const folder = mkdtempSync(join(tmpdir(), 'vmwarden-supervisor-machine-'));
	folders.push(folder);
	return folder;
}

interface StartOptions {
	range?: {first: number; last: number};
	stateDir?: string;
	staleVms?: StaleVmEntry[];
	reaper?: ReturnType<typeof controlledReaper>;
}

function startSupervisor({range = {first: 2048, last: 65_535}, stateDir, staleVms = [], reaper = controlledReaper()}: StartOptions = {}) {
	const logger = winston.createLogger({silent: true});
	const loggedErrors = jest.spyOn(logger, 'error');
	const input: SupervisorMachineInput = {
		cidRange: range,
		lastAllocatedCid: undefined,
		staleVms,
		stateDir,
		vmDefaults: {driver: crosvmDriver, vmmPath: 'crosvm', tempRoot: '/tmp', logger, bootHangupTimeoutMs: 10_000, stopTimeoutMs: 100, vmmEnvironment: defaultVmmEnvironment()},
	};
	const clock = new SimulatedClock();
	const machine = supervisorMachine.provide({actors: {vm: fakeVmMachine, reapStaleVms: reaper.logic}});
	const actor = createActor(machine, {input, clock});
	const emitted: SupervisorMachineEmitted[] = [];
	const replies: SupervisorReply[] = [];
	actor.on('*', event => {
		if ('requestId' in event) {
			replies.push(event);
		} else if (event.type !== 'supervisor.vm.respawned') {
			emitted.push(event);
		}
	});
	actor.start();
	let requestId = 0;
	/** The answer to the request, which the machine gives before `send` returns when it is idle. */
	const answerTo = (id: number): SupervisorReply => {
		const reply = replies.find(candidate => candidate.requestId === id);
		expect(reply).toBeDefined();
		return reply!;
	};

	const create = () => {
		const id = ++requestId;
		actor.send({type: 'VM.CREATE', requestId: id, config: {kernel: '/k'}, requester: {uid: 0, sid: '', debugPid: 1}, payloadChannel: true});
		return answerTo(id);
	};

	const cidOf = (reply: SupervisorReply): number => {
		expect(reply.type).toBe('supervisor.vm.created');
		return reply.type === 'supervisor.vm.created' ? reply.cid : -1;
	};

	const askStart = () => {
		const id = ++requestId;
		// A CID no VM holds: the answer does not depend on the VM.
		actor.send({type: 'VM.START', requestId: id, cid: 1});
		return answerTo(id);
	};

	const child = (cid: number) => actor.getSnapshot().context.vms.get(vmActorId(cid))?.ref as ActorRefFrom<typeof fakeVmMachine> | undefined;
	const fleet = () => actor.getSnapshot().value;
	return {actor, emitted, replies, create, cidOf, askStart, child, clock, loggedErrors, fleet};
}

describe('supervisor machine: CIDs', () => {
	test('allocates in order, spawns a VM child per CID and reports each allocation', () => {
		const {actor, emitted, create, cidOf, child} = startSupervisor();
		expect([cidOf(create()), cidOf(create()), cidOf(create())]).toEqual([2048, 2049, 2050]);
		expect(child(2049)).toBeDefined();
		expect(emitted.filter(event => event.type === 'supervisor.cid.allocated').map(event => (event as {cid: number}).cid)).toEqual([2048, 2049, 2050]);
		actor.stop();
	});

	test('the answer to VM.CREATE carries the spawned VM actor and the request id', () => {
		const {actor, create, child} = startSupervisor();
		const reply = create();
		expect(reply).toMatchObject({type: 'supervisor.vm.created', requestId: 1, cid: 2048});
		expect(reply.type === 'supervisor.vm.created' && reply.vm).toBe(child(2048));
		actor.stop();
	});

	test('a CID is released only once its VM reached its final state (cleaned up)', () => {
		const {actor, emitted, create, cidOf, child, clock} = startSupervisor({range: {first: 10, last: 12}});
		create();
		create();
		child(10)!.send({type: 'START'});
		clock.increment(LAUNCH_MS);
		child(10)!.send({type: 'STOP'});
		// Stopped but not cleaned up: still held, so the allocator wraps past it.
		expect(isCidHeld(actor.getSnapshot().context.pool, 10)).toBe(true);
		expect(cidOf(create())).toBe(12);
		expectRefused(create(), NoAvailableCidError);
		expect(emitted.some(event => event.type === 'supervisor.cid.released')).toBe(false);

		child(10)!.send({type: 'CLEANED'});
		expect(isCidHeld(actor.getSnapshot().context.pool, 10)).toBe(false);
		expect(child(10)).toBeUndefined();
		expect(emitted.at(-1)).toEqual({type: 'supervisor.cid.released', cid: 10, cause: 'vm cleaned up', initiator: 'supervisor'});
		expect(cidOf(create())).toBe(10);
		actor.stop();
	});

	test('a VM that fails to launch releases its CID; one whose actor fails too, logged', () => {
		const {actor, emitted, create, child, loggedErrors} = startSupervisor({range: {first: 10, last: 11}});
		create();
		create();
		child(10)!.send({type: 'START'});
		child(10)!.send({type: 'LAUNCH.FAIL'});
		child(11)!.send({type: 'BREAK'});
		expect(emitted.filter(event => event.type === 'supervisor.cid.released')).toEqual([
			{type: 'supervisor.cid.released', cid: 10, cause: 'vm cleaned up', initiator: 'supervisor'},
			{type: 'supervisor.cid.released', cid: 11, cause: 'vm actor failed', initiator: 'supervisor'},
		]);
		expect(loggedErrors).toHaveBeenCalledWith(expect.stringContaining('VM actor vm.11 failed: Error: the fake VM broke'));
		expect(actor.getSnapshot().context.pool.held).toBe(0);
		expect(actor.getSnapshot().status).toBe('active');
		actor.stop();
	});

	test('with a state directory, a VM actor that fails before it runs is released and throws nothing at the host', async () => {
		const {actor, emitted, create, child} = startSupervisor({range: {first: 10, last: 11}, stateDir: makeStateDir()});
		create();
		child(10)!.send({type: 'BREAK'});
		// An observer without an error handler would have XState rethrow the error from a timer.
		await new Promise(resolve => {
			setTimeout(resolve, 20);
		});
		expect(emitted.filter(event => event.type === 'supervisor.cid.released')).toEqual([{type: 'supervisor.cid.released', cid: 10, cause: 'vm actor failed', initiator: 'supervisor'}]);
		expect(actor.getSnapshot().status).toBe('active');
		actor.stop();
	});

	test('exhaustion refuses with NoAvailableCidError and changes nothing else', () => {
		const {actor, emitted, create} = startSupervisor({range: {first: 10, last: 11}});
		create();
		create();
		const before = actor.getSnapshot();
		const vmsBefore = [...before.context.vms.keys()];
		const eventsBefore = emitted.length;
		const reply = create();
		const after = actor.getSnapshot();
		expect(reply.type === 'supervisor.vm.refused' && reply.error).toBeInstanceOf(NoAvailableCidError);
		expect(reply.type === 'supervisor.vm.refused' && reply.error.message).toMatch(/no available CID/);
		expect(after.context.pool.held).toBe(2);
		expect(after.context.pool.lastAllocated).toBe(before.context.pool.lastAllocated);
		expect([...after.context.vms.keys()]).toEqual(vmsBefore);
		expect(Object.keys(after.children).sort()).toEqual(Object.keys(before.children).sort());
		expect(emitted.length).toBe(eventsBefore);
		actor.stop();
	});

	test('a request sent while the machine is busy with another event is answered once it is processed', () => {
		const {actor, replies} = startSupervisor();
		const send = (requestId: number) => {
			actor.send({type: 'VM.CREATE', requestId, config: {kernel: '/k'}, requester: {uid: 0, sid: '', debugPid: 1}, payloadChannel: true});
		};

		// From inside the machine's own event delivery: the second request is queued behind the first.
		const subscription = actor.on('supervisor.cid.allocated', event => {
			if (event.cid === 2048) {
				send(2);
				expect(replies.map(reply => reply.requestId)).toEqual([]);
			}
		});
		send(1);
		subscription.unsubscribe();
		expect(replies.map(reply => [reply.requestId, reply.type === 'supervisor.vm.created' ? reply.cid : reply.type])).toEqual([[1, 2048], [2, 2049]]);
		actor.stop();
	});
});

describe('supervisor machine: shutdown', () => {
	test('stops running VMs, discards unstarted ones, refuses new ones, and ends when all are cleaned up', () => {
		const {actor, emitted, create, child, clock} = startSupervisor();
		create();
		create();
		const running = child(2048)!;
		running.send({type: 'START'});
		clock.increment(LAUNCH_MS);
		actor.send({type: 'SHUTDOWN', stopTimeoutMs: 700});
		expect(running.getSnapshot().value).toBe('CleaningUp');
		expect(running.getSnapshot().context).toMatchObject({stopTimeoutMs: 700, stopInitiator: 'supervisor'});
		expect(child(2049)).toBeUndefined();
		expectRefused(create(), SupervisorShutDownError);
		expect(actor.getSnapshot().matches({Serving: {fleet: 'Draining'}})).toBe(true);

		running.send({type: 'CLEANED'});
		expect(actor.getSnapshot().matches('ShutDown')).toBe(true);
		expect(emitted.map(event => event.type)).toEqual([
			'supervisor.cid.allocated',
			'supervisor.cid.allocated',
			'supervisor.shutdown.started',
			'supervisor.cid.released',
			'supervisor.cid.released',
			'supervisor.shutdown.completed',
		]);
	});

	test('without a timeout of its own, shutdown stops each VM with the VMs\' stop timeout', () => {
		const {actor, create, child, clock} = startSupervisor();
		create();
		child(2048)!.send({type: 'START'});
		clock.increment(LAUNCH_MS);
		actor.send({type: 'SHUTDOWN'});
		expect(child(2048)!.getSnapshot().context.stopTimeoutMs).toBe(100);
		actor.stop();
	});

	test('sends STOP in batches, one batch per macrotask, until every VM got it', () => {
		const {actor, create, cidOf, child, clock} = startSupervisor();
		const cids = Array.from({length: (2 * STOP_BATCH_SIZE) + 3}, () => cidOf(create()));
		for (const cid of cids) {
			child(cid)!.send({type: 'START'});
		}

		clock.increment(LAUNCH_MS);
		const stopping = () => cids.filter(cid => child(cid)!.getSnapshot().value === 'CleaningUp').length;
		actor.send({type: 'SHUTDOWN'});
		expect(stopping()).toBe(STOP_BATCH_SIZE);
		clock.increment(0);
		expect(stopping()).toBe(2 * STOP_BATCH_SIZE);
		clock.increment(0);
		expect(stopping()).toBe(cids.length);
		for (const cid of cids) {
			child(cid)!.send({type: 'CLEANED'});
		}

		expect(actor.getSnapshot().matches('ShutDown')).toBe(true);
	});

	test('a VM still launching gets STOP, finishes launching, then stops; shutdown waits for it', () => {
		const {actor, emitted, create, child, clock} = startSupervisor();
		create();
		const launching = child(2048)!;
		launching.send({type: 'START'});
		clock.increment(LAUNCH_MS - 10);
		actor.send({type: 'SHUTDOWN'});
		expect(launching.getSnapshot().value).toEqual({NotStarted: 'launching'});
		expect(launching.getSnapshot().context.stopInitiator).toBe('supervisor');
		// Not discarded: it is not idle, and its CID stays held.
		expect(emitted.some(event => event.type === 'supervisor.cid.released')).toBe(false);

		clock.increment(10);
		expect(launching.getSnapshot().value).toBe('CleaningUp');
		expect(actor.getSnapshot().matches('ShutDown')).toBe(false);
		launching.send({type: 'CLEANED'});
		expect(actor.getSnapshot().matches('ShutDown')).toBe(true);
		expect(emitted.at(-2)).toEqual({type: 'supervisor.cid.released', cid: 2048, cause: 'vm cleaned up', initiator: 'supervisor'});
	});

	test('shutdown with no VM ends at once; a second SHUTDOWN changes nothing', () => {
		const {actor, emitted} = startSupervisor();
		actor.send({type: 'SHUTDOWN'});
		expect(actor.getSnapshot().matches('ShutDown')).toBe(true);
		actor.send({type: 'SHUTDOWN'});
		expect(emitted.map(event => event.type)).toEqual(['supervisor.shutdown.started', 'supervisor.shutdown.completed']);
	});
});

describe('supervisor machine: starting goes through the supervisor', () => {
	test('VM.START is accepted while accepting VMs, refused with SupervisorShutDownError while draining and once shut down', () => {
		const {actor, create, askStart, child, clock} = startSupervisor();
		expect(askStart()).toEqual({type: 'supervisor.vm.startAccepted', requestId: 1});
		create();
		child(2048)!.send({type: 'START'});
		clock.increment(LAUNCH_MS);
		actor.send({type: 'SHUTDOWN'});

		const draining = askStart();
		expectRefused(draining, SupervisorShutDownError);
		expectRefused(create(), SupervisorShutDownError);

		child(2048)!.send({type: 'CLEANED'});
		expect(actor.getSnapshot().matches('ShutDown')).toBe(true);
		// Shut down is a state that still answers: every later request is refused, none goes unanswered.
		expectRefused(askStart(), SupervisorShutDownError);
		expectRefused(create(), SupervisorShutDownError);
		expect(actor.getSnapshot().status).toBe('active');
		actor.stop();
	});
});

describe('supervisor machine: reaping', () => {
	const stale = (cid: number): StaleVmEntry => ({cid, file: `${cid}.json`});

	test('stale CIDs stay held until the reaper is done, then are released and reported', async () => {
		const stateDir = makeStateDir();
		const reaper = controlledReaper();
		const {actor, emitted, create, cidOf} = startSupervisor({range: {first: 10, last: 11}, stateDir, staleVms: [stale(10), stale(11)], reaper});
		expect(actor.getSnapshot().matches({Serving: {reaper: 'Reaping'}})).toBe(true);
		expect(reaper.calls).toEqual([{stateDir, entries: [stale(10), stale(11)]}]);
		expectRefused(create(), NoAvailableCidError);

		reaper.settle.resolve([{cid: 10, pid: 999_999, tempDir: '/tmp/stale-10', outcome: 'gone', tempDirRemoved: true, reason: 'test', cidReleased: true}, {cid: 11, pid: 999_999, tempDir: '/tmp/stale-11', outcome: 'killed', tempDirRemoved: true, reason: 'test', cidReleased: true}]);
		await waitFor(actor, snapshot => snapshot.matches({Serving: {reaper: 'Reaped'}}));
		expect(emitted.filter(event => event.type === 'supervisor.staleVm.reaped').map(event => [event.cid, event.outcome])).toEqual([[10, 'gone'], [11, 'killed']]);
		expect(emitted.filter(event => event.type === 'supervisor.cid.released').map(event => [event.cid, event.cause])).toEqual([[10, 'stale vm reaped'], [11, 'stale vm reaped']]);
		expect(cidOf(create())).toBe(10);
		actor.stop();
	});

	test('a shutdown during reaping ends only once the reaper is done', async () => {
		const stateDir = makeStateDir();
		const reaper = controlledReaper();
		const {actor} = startSupervisor({stateDir, staleVms: [stale(2048)], reaper});
		actor.send({type: 'SHUTDOWN'});
		expect(actor.getSnapshot().matches({Serving: {fleet: 'Drained', reaper: 'Reaping'}})).toBe(true);
		reaper.settle.resolve([{cid: 2048, pid: 999_999, tempDir: '/tmp/stale-2048', outcome: 'gone', tempDirRemoved: true, reason: 'test', cidReleased: true}]);
		await waitFor(actor, snapshot => snapshot.matches('ShutDown'));
	});

	test('a failed reaper is logged, keeps the stale CIDs held, and the supervisor goes on', async () => {
		const stateDir = makeStateDir();
		const reaper = controlledReaper();
		const {actor, create, cidOf, loggedErrors} = startSupervisor({range: {first: 10, last: 11}, stateDir, staleVms: [stale(10)], reaper});
		reaper.settle.reject(new Error('no /proc'));
		await waitFor(actor, snapshot => snapshot.matches({Serving: {reaper: 'Reaped'}}));
		expect(loggedErrors).toHaveBeenCalledWith(expect.stringContaining('no /proc'));
		expect(cidOf(create())).toBe(11);
		actor.stop();
	});

	test('without a state directory nothing is reaped', () => {
		const reaper = controlledReaper();
		const {actor} = startSupervisor({reaper, staleVms: [stale(2048)]});
		expect(actor.getSnapshot().matches({Serving: {reaper: 'Reaped'}})).toBe(true);
		expect(reaper.calls).toEqual([]);
		actor.stop();
	});
});

describe('supervisor machine: the state directory', () => {
	test('writes the last CID and a record of each running VM, and removes the record once the VM is cleaned up', () => {
		const stateDir = makeStateDir();
		const {actor, create, child, clock} = startSupervisor({stateDir});
		create();
		expect(readFileSync(join(stateDir, LAST_CID_FILE), 'utf8')).toBe('2048\n');
		child(2048)!.send({type: 'START'});
		clock.increment(LAUNCH_MS);
		const record = join(stateDir, VM_RECORDS_DIR, '2048.json');
		expect(JSON.parse(readFileSync(record, 'utf8'))).toMatchObject({cid: 2048, pid: process.pid, tempDir: '/tmp/fake-vm'});
		child(2048)!.send({type: 'STOP'});
		child(2048)!.send({type: 'CLEANED'});
		expect(existsSync(record)).toBe(false);
		actor.stop();
	});

	test('a last CID that cannot be written is logged and reported, and the VM is still created', () => {
		const stateDir = makeStateDir();
		// rename(2) cannot put a file over a directory.
		mkdirSync(join(stateDir, LAST_CID_FILE, 'blocker'), {recursive: true});
		const {actor, emitted, create, cidOf, loggedErrors} = startSupervisor({stateDir});
		expect(cidOf(create())).toBe(2048);
		expect(cidOf(create())).toBe(2049);
		expect(emitted.map(event => event.type)).toEqual(['supervisor.cid.allocated', 'supervisor.state.writeFailed', 'supervisor.cid.allocated', 'supervisor.state.writeFailed']);
		expect(emitted.filter(event => event.type === 'supervisor.state.writeFailed')).toEqual([
			expect.objectContaining({write: 'last-cid', cid: 2048, stateDir, initiator: 'supervisor'}),
			expect.objectContaining({write: 'last-cid', cid: 2049, stateDir, initiator: 'supervisor'}),
		]);
		expect(loggedErrors).toHaveBeenCalledWith(expect.stringContaining('Could not write the last CID 2048'));
		expect(actor.getSnapshot().status).toBe('active');
		actor.stop();
	});

	test('a VM record that cannot be written is reported, the VM runs on, and shutdown still stops it', () => {
		const stateDir = makeStateDir();
		// The records' folder cannot be made: a file is in its place.
		writeFileSync(join(stateDir, 'vms'), 'not a folder');
		const {actor, emitted, create, child, clock} = startSupervisor({stateDir});
		create();
		child(2048)!.send({type: 'START'});
		clock.increment(LAUNCH_MS);
		expect(emitted.filter(event => event.type === 'supervisor.state.writeFailed')).toEqual([expect.objectContaining({write: 'vm-record', cid: 2048})]);
		expect(child(2048)!.getSnapshot().value).toBe('Running');
		actor.send({type: 'SHUTDOWN'});
		expect(child(2048)!.getSnapshot().value).toBe('CleaningUp');
		child(2048)!.send({type: 'CLEANED'});
		expect(actor.getSnapshot().matches('ShutDown')).toBe(true);
	});
});
