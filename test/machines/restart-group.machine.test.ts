/**
 * The group machine on a simulated clock, spawned by a parent that stands in for the supervisor and
 * records what the group asks of it: which members each strategy stops and restarts and in which
 * order, a failure joining a restart under way, the group's backoff and its reset, its intensity
 * and giving up, stops through a member's handle, and a shutdown. Together the tests enter every
 * state of the group's chart.
 */
import {describe, expect, test} from '@jest/globals';
import {assign, createActor, setup, SimulatedClock, type ActorRefFrom} from 'xstate';
import {groupMachine, type GroupEmitted, type GroupRequest} from '../../src/machines/group.machine.js';
import {RestartEnvironment} from '../../src/services/restart/environment.js';
import {resolveGroupPolicy, resolveRestartPolicy, type GroupPolicyOptions} from '../../src/services/restart/policy.js';
import type {DeathReason} from '../../src/services/death/reason.js';
import type {VmDeath} from '../../src/types.js';
import {stateNodeIds} from '../helpers/real-states.js';
import {chartTransitions, recordChildCoverage} from './restart-harness.js';

const visited = new Set<string>();

const taken = new Set<string>();
const recordGroupStates = recordChildCoverage(groupMachine, 'group', visited, taken);

const memberPolicy = resolveRestartPolicy({restart: 'on-failure', onReboot: 'restart'});

function death(cid: number, reason: DeathReason, initiator: VmDeath['initiator'] = 'vmm'): VmDeath {
	return {cid, reason, exitCode: undefined, signal: undefined, failureReason: undefined, failureContext: undefined, payloadState: 'Started', stderrTail: '', initiator};
}

/** A group of members 1, 2 and 3 (all started unless told), under `policy`, on a simulated clock. */
function group(policy: GroupPolicyOptions, {started = [1, 2, 3]}: {started?: number[]} = {}) {
	const clock = new SimulatedClock();
	const parentMachine = setup({
		types: {context: {} as {requests: string[]}, events: {} as GroupRequest},
		actors: {group: groupMachine},
	}).createMachine({
		context: {requests: []},
		invoke: {id: 'group', src: 'group', input: {id: 'group.1', policy: resolveGroupPolicy({backoff: {initialDelayMs: 100, factor: 2, maxDelayMs: 400, jitter: 0}, resetAfterMs: 1000, ...policy}), env: new RestartEnvironment(() => clock.now(), () => 0)}},
		on: {
			'GROUP.*': {
				actions: assign(({context, event}) => ({requests: [...context.requests, 'cids' in event ? `${event.type} ${event.cids.join(',')}` : `${event.type} ${event.cid}`]})),
			},
		},
	});
	const parent = createActor(parentMachine, {clock, inspect: recordGroupStates}).start();
	const ref = parent.getSnapshot().children['group'] as ActorRefFrom<typeof groupMachine>;
	const emitted: GroupEmitted[] = [];
	ref.on('*', event => emitted.push(event));
	for (const cid of [1, 2, 3]) {
		ref.send({type: 'MEMBER.ADD', cid, policy: memberPolicy});
	}

	for (const cid of started) {
		ref.send({type: 'MEMBER.STARTED', cid});
	}

	/** What the group asked of the supervisor since the last call. */
	const requests = () => {
		const all = parent.getSnapshot().context.requests;
		const fresh = all.slice(taken);
		taken = all.length;
		return fresh;
	};

	let taken = 0;
	const steps = () => emitted.map(event => {
		switch (event.type) {
			case 'supervisor.group.restartScheduled': {
				return `scheduled #${event.attempt}: ${event.cid} ${event.reason}, ${event.members.join(',')} in ${event.delayMs}`;
			}

			case 'supervisor.group.restarted': {
				return `restarted ${event.members.join(',')}`;
			}

			case 'supervisor.group.memberLeft': {
				return `${event.cid} left (${event.outcome}, ${event.death?.reason ?? 'no death'})`;
			}
		}
	});
	const died = (cid: number, reason: DeathReason | undefined, initiator?: VmDeath['initiator']) => {
		ref.send({type: 'MEMBER.DIED', cid, death: reason === undefined ? undefined : death(cid, reason, initiator)});
	};

	/** Plays the supervisor: starts what the group asked to restart. */
	const restartAsked = (request: string | undefined) => {
		for (const cid of (request ?? '').replace('GROUP.RESTART ', '').split(',').map(Number)) {
			ref.send({type: 'MEMBER.STARTED', cid});
		}
	};

	return {ref, clock, requests, steps, died, restartAsked, state: () => ref.getSnapshot().value};
}

describe('strategies', () => {
	test.each([
		['one-for-one', '2', []],
		['one-for-all', '1,2,3', ['GROUP.STOP 1,3']],
		['rest-for-one', '2,3', ['GROUP.STOP 3']],
	] as const)('%s: a failure of 2 stops the others to restart, waits the backoff, and restarts %s in order', (strategy, restarted, stops) => {
		const {clock, requests, steps, died, restartAsked, state} = group({strategy});
		died(2, 'CRASH');
		expect(requests()).toEqual(stops);
		for (const cid of restarted.split(',').map(Number).filter(cid => cid !== 2)) {
			expect(state()).toEqual({Active: 'Stopping'});
			died(cid, 'SHUTDOWN', 'supervisor');
		}

		expect(state()).toEqual({Active: 'Backoff'});
		clock.increment(99);
		expect(requests()).toEqual([]);
		clock.increment(1);
		const [restart] = requests();
		expect(restart).toBe(`GROUP.RESTART ${restarted}`);
		expect(state()).toEqual({Active: 'Restarting'});
		restartAsked(restart);
		expect(state()).toEqual({Active: {Running: 'Proving'}});
		expect(steps()).toEqual([`scheduled #1: 2 CRASH, ${restarted} in 100`, `restarted ${restarted}`]);
	});

	test('members never started are not restarted with the others', () => {
		const {requests, died, state} = group({strategy: 'one-for-all'}, {started: [1, 2]});
		died(1, 'CRASH');
		expect(requests()).toEqual(['GROUP.STOP 2']);
		died(2, 'SHUTDOWN', 'supervisor');
		expect(state()).toEqual({Active: 'Backoff'});
	});

	test('a member failing during the backoff joins the restart, in the group order', () => {
		const {clock, requests, steps, died} = group({strategy: 'one-for-one'});
		died(3, 'CRASH');
		died(1, 'GUEST_PANIC');
		clock.increment(100);
		expect(requests()).toEqual(['GROUP.RESTART 1,3']);
		expect(steps()).toEqual(['scheduled #1: 3 CRASH, 3 in 100']);
	});

	test('a member failing while the others stop joins the restart', () => {
		const {clock, requests, died, state} = group({strategy: 'rest-for-one'});
		died(2, 'CRASH');
		expect(requests()).toEqual(['GROUP.STOP 3']);
		died(1, 'CRASH');
		expect(state()).toEqual({Active: 'Stopping'});
		died(3, 'SHUTDOWN', 'supervisor');
		clock.increment(100);
		expect(requests()).toEqual(['GROUP.RESTART 1,2,3']);
	});
});

describe('backoff and intensity', () => {
	test('each group restart waits the next step; running resetAfterMs without one starts over', () => {
		const {clock, requests, steps, died, restartAsked} = group({strategy: 'one-for-one', intensity: {maxRestarts: 10, windowMs: 60_000}});
		for (const expected of [100, 200, 400, 400]) {
			died(1, 'CRASH');
			clock.increment(expected);
			restartAsked(requests()[0]);
		}

		clock.increment(1000);
		died(1, 'CRASH');
		expect(steps().filter(step => step.startsWith('scheduled')).map(step => step.split(' in ')[1])).toEqual(['100', '200', '400', '400', '100']);
	});

	test('a reboot restarts at once, without lengthening the backoff', () => {
		const {clock, requests, died, restartAsked, steps} = group({strategy: 'one-for-one', intensity: {maxRestarts: 10, windowMs: 60_000}});
		died(1, 'REBOOT', 'guest');
		clock.increment(0);
		restartAsked(requests()[0]);
		died(1, 'CRASH');
		expect(steps()).toEqual(['scheduled #1: 1 REBOOT, 1 in 0', 'restarted 1', 'scheduled #2: 1 CRASH, 1 in 100']);
	});

	test('past its intensity it reports to the supervisor, stops every running member, and is done when all left', () => {
		const {ref, clock, requests, steps, died, restartAsked, state} = group({strategy: 'one-for-one', intensity: {maxRestarts: 1, windowMs: 60_000}});
		died(2, 'CRASH');
		clock.increment(100);
		restartAsked(requests()[0]);
		died(2, 'CRASH');
		expect(state()).toBe('GivingUp');
		expect(requests()).toEqual(['GROUP.GAVE_UP 2', 'GROUP.STOP 1,3', 'GROUP.RELEASE 2']);
		died(1, 'SHUTDOWN', 'supervisor');
		died(3, 'SHUTDOWN', 'supervisor');
		expect(requests()).toEqual(['GROUP.RELEASE 1', 'GROUP.RELEASE 3']);
		expect(ref.getSnapshot().status).toBe('done');
		expect(steps().slice(2)).toEqual(['2 left (gave-up, CRASH)', '1 left (gave-up, SHUTDOWN)', '3 left (gave-up, SHUTDOWN)']);
	});

	test('a restart whose start fails counts as a failure; the caller\'s first failed start does not', () => {
		const {clock, requests, died, restartAsked, state, steps} = group({strategy: 'one-for-one'});
		died(3, undefined);
		expect(steps()).toEqual(['3 left (ended, no death)']);
		expect(requests()).toEqual(['GROUP.RELEASE 3']);
		died(1, 'CRASH');
		clock.increment(100);
		restartAsked(requests()[0]);
		died(1, undefined);
		expect(state()).toEqual({Active: 'Backoff'});
		expect(steps().at(-1)).toBe('scheduled #2: 1 START_FAILED, 1 in 200');
	});
});

describe('ends', () => {
	test('a death that is no failure ends the member alone; the group goes on', () => {
		const {requests, died, state, steps} = group({strategy: 'one-for-all'});
		died(2, 'SHUTDOWN', 'guest');
		expect(requests()).toEqual(['GROUP.RELEASE 2']);
		expect(state()).toEqual({Active: {Running: 'Proving'}});
		expect(steps()).toEqual(['2 left (ended, SHUTDOWN)']);
	});

	test('a stop through the handle: a running member\'s next death is its last, a member waiting for the restart leaves at once', () => {
		const {ref, clock, requests, died, steps, state} = group({strategy: 'one-for-all'});
		ref.send({type: 'MEMBER.END', cid: 1});
		died(1, 'CRASH');
		expect(requests()).toEqual(['GROUP.RELEASE 1']);
		died(2, 'CRASH');
		expect(requests()).toEqual(['GROUP.STOP 3']);
		ref.send({type: 'MEMBER.END', cid: 3});
		ref.send({type: 'MEMBER.END', cid: 2});
		died(3, 'SHUTDOWN', 'supervisor');
		// Nobody is left to restart: the group drops the restart and runs on.
		expect(state()).toEqual({Active: {Running: 'Proving'}});
		clock.increment(100);
		expect(requests()).toEqual(['GROUP.RELEASE 2', 'GROUP.RELEASE 3']);
		expect(steps()).toEqual(['1 left (ended, CRASH)', 'scheduled #1: 2 CRASH, 2 in 100', '2 left (cancelled, CRASH)', '3 left (ended, SHUTDOWN)']);
	});

	test('a stop of a member that never started does nothing', () => {
		const {ref, requests, state} = group({strategy: 'one-for-all'}, {started: [1]});
		ref.send({type: 'MEMBER.END', cid: 2});
		expect(requests()).toEqual([]);
		expect(state()).toEqual({Active: {Running: 'Proving'}});
	});

	test('a member stopping during the restart of a failed one, and a stop during Restarting', () => {
		const {ref, clock, requests, died, state} = group({strategy: 'one-for-one'});
		died(1, 'CRASH');
		ref.send({type: 'MEMBER.END', cid: 2});
		expect(state()).toEqual({Active: 'Backoff'});
		clock.increment(100);
		expect(requests()).toEqual(['GROUP.RESTART 1']);
		expect(state()).toEqual({Active: 'Restarting'});
		ref.send({type: 'MEMBER.END', cid: 1});
		expect(requests()).toEqual(['GROUP.RELEASE 1']);
		expect(state()).toEqual({Active: {Running: 'Proving'}});
	});

	test('a shutdown: members waiting for a restart leave at once, running ones when they die, then the group is done', () => {
		const {ref, requests, died, state, steps} = group({strategy: 'one-for-one'});
		died(1, 'CRASH');
		ref.send({type: 'END'});
		expect(state()).toBe('Ending');
		expect(requests()).toEqual(['GROUP.RELEASE 1']);
		died(2, 'SHUTDOWN', 'supervisor');
		died(3, 'SHUTDOWN', 'supervisor');
		expect(requests()).toEqual(['GROUP.RELEASE 2', 'GROUP.RELEASE 3']);
		expect(ref.getSnapshot().status).toBe('done');
		expect(steps().slice(1)).toEqual(['1 left (cancelled, CRASH)', '2 left (ended, SHUTDOWN)', '3 left (ended, SHUTDOWN)']);
	});

	test('the healthy period passing moves Running to Healthy', () => {
		const {clock, state} = group({});
		clock.increment(1000);
		expect(state()).toEqual({Active: {Running: 'Healthy'}});
	});
});

describe('deaths during a group restart', () => {
	test('while the others stop: a member outside the restart ending for good leaves; the failed one stopped through its handle leaves at once', () => {
		const {ref, requests, died, state, steps} = group({strategy: 'rest-for-one'});
		died(2, 'CRASH');
		expect(requests()).toEqual(['GROUP.STOP 3']);
		died(1, 'SHUTDOWN', 'guest');
		ref.send({type: 'MEMBER.END', cid: 2});
		expect(requests()).toEqual(['GROUP.RELEASE 1', 'GROUP.RELEASE 2']);
		expect(state()).toEqual({Active: 'Stopping'});
		died(3, 'SHUTDOWN', 'supervisor');
		expect(steps()).toEqual(['1 left (ended, SHUTDOWN)', '2 left (cancelled, CRASH)', 'scheduled #1: 2 CRASH, 3 in 100']);
	});

	test('during the backoff: a member outside the restart ending for good leaves', () => {
		const {requests, died, state} = group({strategy: 'one-for-one'});
		died(2, 'CRASH');
		died(3, 'SHUTDOWN', 'guest');
		expect(requests()).toEqual(['GROUP.RELEASE 3']);
		expect(state()).toEqual({Active: 'Backoff'});
	});

	/** Group one-for-one; member 1 failed and its restart was asked for, not yet reported started. */
	const restarting = (policy: GroupPolicyOptions = {}) => {
		const harness = group({strategy: 'one-for-one', ...policy});
		harness.died(1, 'CRASH');
		harness.clock.increment(100);
		expect(harness.requests()).toEqual(['GROUP.RESTART 1']);
		expect(harness.state()).toEqual({Active: 'Restarting'});
		return harness;
	};

	test('while restarting: a member ending for good leaves, a stop of a running one waits for its death', () => {
		const {ref, requests, died, state, restartAsked} = restarting();
		died(2, 'SHUTDOWN', 'guest');
		ref.send({type: 'MEMBER.END', cid: 3});
		expect(requests()).toEqual(['GROUP.RELEASE 2']);
		died(3, 'CRASH');
		expect(requests()).toEqual(['GROUP.RELEASE 3']);
		restartAsked('GROUP.RESTART 1');
		expect(state()).toEqual({Active: {Running: 'Proving'}});
	});

	test('while restarting: a failure starts a new restart that keeps the members still starting', () => {
		const {clock, requests, died, state} = restarting();
		died(3, 'CRASH');
		expect(state()).toEqual({Active: 'Backoff'});
		clock.increment(200);
		expect(requests()).toEqual(['GROUP.RESTART 1,3']);
	});

	test('while restarting: a failure past the intensity gives up', () => {
		const {requests, died, state} = restarting({intensity: {maxRestarts: 1, windowMs: 60_000}});
		died(2, 'CRASH');
		expect(state()).toBe('GivingUp');
		expect(requests()).toEqual(['GROUP.GAVE_UP 2', 'GROUP.STOP 3', 'GROUP.RELEASE 1', 'GROUP.RELEASE 2']);
	});
});

test('the tests enter every state of the group chart and take every transition', () => {
	expect([...stateNodeIds(groupMachine)].filter(id => !visited.has(id))).toEqual([]);
	expect([...chartTransitions(groupMachine)].filter(transition => !taken.has(transition))).toEqual([]);
});
