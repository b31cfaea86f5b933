import {createActor, setup, type AnyActorRef} from 'xstate';
import winston from 'winston';
import {isCidHeld} from '../../src/services/cids/allocator.js';
import {crosvmDriver} from '../../src/services/crosvm/driver.js';
import {STOP_BATCH_SIZE, supervisorMachine, vmActorId, type SupervisorMachineEmitted, type SupervisorMachineInput} from '../../src/machines/supervisor.machine.js';
import {NoAvailableCidError} from '../../src/errors.js';

/**
 * A stand-in for the VM machine with the same outline (NotStarted.idle, Running, a final state) and
 * one difference that makes cleanup observable: after STOP it stays in CleaningUp until CLEANED.
 */
const fakeVmMachine = setup({
	types: {
		context: {} as {cid: number},
		input: {} as {cid: number},
		events: {} as {type: 'START'} | {type: 'STOP'} | {type: 'CLEANED'},
	},
}).createMachine({
	context: ({input}) => ({cid: input.cid}),
	initial: 'NotStarted',
	states: {
		NotStarted: {
			initial: 'idle',
			states: {idle: {on: {START: '#fake.Running'}}},
		},
		Running: {on: {STOP: 'CleaningUp'}},
		CleaningUp: {on: {CLEANED: 'Dead'}},
		Dead: {type: 'final'},
	},
	id: 'fake',
});

const logger = winston.createLogger({silent: true});

function startSupervisor(range = {first: 2048, last: 65_535}) {
	const input: SupervisorMachineInput = {
		cidRange: range,
		lastAllocatedCid: undefined,
		staleVms: [],
		stateDir: undefined,
		vmDefaults: {driver: crosvmDriver, vmmPath: 'crosvm', tempRoot: '/tmp', logger, bootHangupTimeoutMs: 10_000, stopTimeoutMs: 100},
	};
	const actor = createActor(supervisorMachine.provide({actors: {vm: fakeVmMachine}}), {input});
	const emitted: SupervisorMachineEmitted[] = [];
	actor.on('*', event => emitted.push(event));
	actor.start();
	let requestId = 0;
	const create = () => {
		const id = ++requestId;
		actor.send({type: 'VM.CREATE', requestId: id, config: {kernel: '/k'}, requester: {uid: 0, sid: '', debugPid: 1}, payloadChannel: true, ticket: {abandoned: false}});
		const outcome = actor.getSnapshot().context.lastCreation!;
		expect(outcome.requestId).toBe(id);
		return outcome;
	};

	const child = (cid: number) => actor.getSnapshot().children[vmActorId(cid)] as AnyActorRef | undefined;
	return {actor, emitted, create, child};
}

describe('supervisor machine: CIDs', () => {
	test('allocates in order, spawns a VM child per CID and reports each allocation', () => {
		const {actor, emitted, create, child} = startSupervisor();
		expect([create().cid, create().cid, create().cid]).toEqual([2048, 2049, 2050]);
		expect(child(2049)).toBeDefined();
		expect(emitted.filter(event => event.type === 'supervisor.cid.allocated').map(event => (event as {cid: number}).cid)).toEqual([2048, 2049, 2050]);
		actor.stop();
	});

	test('a CID is released only once its VM reached its final state (cleaned up)', () => {
		const {actor, emitted, create, child} = startSupervisor({first: 10, last: 12});
		create();
		create();
		child(10)!.send({type: 'START'});
		child(10)!.send({type: 'STOP'});
		// Stopped but not cleaned up: still held, so the allocator wraps past it.
		expect(isCidHeld(actor.getSnapshot().context.pool, 10)).toBe(true);
		expect(create().cid).toBe(12);
		expect(create().error).toBeInstanceOf(NoAvailableCidError);
		expect(emitted.some(event => event.type === 'supervisor.cid.released')).toBe(false);

		child(10)!.send({type: 'CLEANED'});
		expect(isCidHeld(actor.getSnapshot().context.pool, 10)).toBe(false);
		expect(child(10)).toBeUndefined();
		expect(emitted.at(-1)).toEqual({type: 'supervisor.cid.released', cid: 10, cause: 'vm cleaned up', initiator: 'supervisor'});
		expect(create().cid).toBe(10);
		actor.stop();
	});

	test('exhaustion refuses with NoAvailableCidError and changes nothing else', () => {
		const {actor, emitted, create} = startSupervisor({first: 10, last: 11});
		create();
		create();
		const before = actor.getSnapshot();
		const eventsBefore = emitted.length;
		const outcome = create();
		const after = actor.getSnapshot();
		expect(outcome.error).toBeInstanceOf(NoAvailableCidError);
		expect(outcome.error?.message).toMatch(/no available CID/);
		expect(after.context.pool.held).toBe(2);
		expect(after.context.pool.lastAllocated).toBe(before.context.pool.lastAllocated);
		expect(Object.keys(after.children).sort()).toEqual(Object.keys(before.children).sort());
		expect(emitted.length).toBe(eventsBefore);
		actor.stop();
	});

	test('an abandoned request allocates nothing', () => {
		const {actor} = startSupervisor();
		actor.send({type: 'VM.CREATE', requestId: 1, config: {kernel: '/k'}, requester: {uid: 0, sid: '', debugPid: 1}, payloadChannel: true, ticket: {abandoned: true}});
		expect(actor.getSnapshot().context.pool.held).toBe(0);
		expect(actor.getSnapshot().context.lastCreation).toBeUndefined();
		actor.stop();
	});

	test('shutdown stops running VMs, discards unstarted ones, refuses new ones, and ends when all are cleaned up', () => {
		const {actor, emitted, create, child} = startSupervisor();
		create();
		create();
		const running = child(2048)!;
		running.send({type: 'START'});
		actor.send({type: 'SHUTDOWN'});
		expect(running.getSnapshot().value).toBe('CleaningUp');
		expect(child(2049)).toBeUndefined();
		expect(create().error?.name).toBe('SupervisorShutDownError');
		expect(actor.getSnapshot().status).toBe('active');

		running.send({type: 'CLEANED'});
		expect(actor.getSnapshot().status).toBe('done');
		expect(emitted.map(event => event.type)).toEqual([
			'supervisor.cid.allocated',
			'supervisor.cid.allocated',
			'supervisor.shutdown.started',
			'supervisor.cid.released',
			'supervisor.cid.released',
			'supervisor.shutdown.completed',
		]);
	});

	test('shutdown sends STOP in batches, one batch per macrotask, until every VM got it', async () => {
		const {actor, create, child} = startSupervisor();
		const cids = Array.from({length: 2 * STOP_BATCH_SIZE + 3}, () => create().cid!);
		for (const cid of cids) {
			child(cid)!.send({type: 'START'});
		}

		const stopping = () => cids.filter(cid => child(cid)!.getSnapshot().value === 'CleaningUp').length;
		actor.send({type: 'SHUTDOWN'});
		expect(stopping()).toBe(STOP_BATCH_SIZE);
		await new Promise(resolve => {
			setTimeout(resolve, 0);
		});
		expect(stopping()).toBe(2 * STOP_BATCH_SIZE);
		await new Promise(resolve => {
			setTimeout(resolve, 5);
		});
		expect(stopping()).toBe(cids.length);
		for (const cid of cids) {
			child(cid)!.send({type: 'CLEANED'});
		}

		expect(actor.getSnapshot().status).toBe('done');
	});
});
