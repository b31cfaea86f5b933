/**
 * Supervision groups of three VMs on crosvm-sim (built by `npm run build`), under each strategy: a
 * member killed by a signal nobody asked for restarts the members the strategy names, in the
 * group's order, and leaves the others running; a member that crashes for ever makes the group give
 * up past its intensity, stopping every member. Every test ends with nothing leaked.
 */
import {SupervisionGroupClosedError} from '../../src/errors.js';
import type {SupervisedVm, SupervisorEvent} from '../../src/supervisor.js';
import type {GroupStrategy} from '../../src/services/restart/policy.js';
import {until} from '../helpers/until.js';
import {useRestartFixture} from './restart-fixture.js';

const FAST = {backoff: {initialDelayMs: 20, factor: 2, maxDelayMs: 1000, jitter: 0}};

const fixture = useRestartFixture();
const guest = (...directives: string[]) => fixture.guest(directives);
const supervise = () => fixture.supervise({restartPolicy: {restart: 'on-failure'}});

/** The group's steps, with member CIDs written as their names. */
function groupSteps(events: SupervisorEvent[], names: Map<number, string>): string[] {
	const name = (cid: number) => names.get(cid) ?? String(cid);
	return events.flatMap(event => {
		switch (event.type) {
			case 'supervisor.group.restartScheduled': {
				return [`${event.strategy}: ${name(event.cid)} ${event.reason}, restart #${event.attempt} of ${event.members.map(name).join('')} in ${event.delayMs}`];
			}

			case 'supervisor.group.restarted': {
				return [`restarted ${event.members.map(name).join('')}`];
			}

			case 'supervisor.group.gaveUp': {
				return [`gave up after ${event.restarts}: ${name(event.cid)} ${event.reason}`];
			}

			case 'supervisor.group.memberLeft': {
				return [`${name(event.cid)} left (${event.outcome})`];
			}

			default: {
				return [];
			}
		}
	});
}

describe.each([
	['one-for-one', 'B', ['A', 'C']],
	['one-for-all', 'ABC', []],
	['rest-for-one', 'BC', ['A']],
] as Array<[GroupStrategy, string, string[]]>)('%s', (strategy, restarted, untouched) => {
	test(`B killed by an outside signal restarts ${restarted}; ${untouched.join('') || 'nothing'} keeps running`, async () => {
		const {supervisor, events} = supervise();
		const group = await supervisor.createGroup({strategy, ...FAST});
		const kernel = guest('payload started', 'payload ready', 'hang');
		const vms: Record<string, SupervisedVm> = {};
		for (const name of ['A', 'B', 'C']) {
			vms[name] = await group.createVm({kernel});
		}

		for (const vm of Object.values(vms)) {
			await vm.start();
		}

		// Every guest up before B dies: a member stopped for the restart then answers its stop (a
		// guest still booting on a loaded machine might not have its control socket yet).
		await until(() => Object.values(vms).every(vm => vm.payloadState === 'Ready'));
		const names = new Map(Object.entries(vms).map(([name, vm]) => [vm.cid, name]));
		const pids = new Map(Object.entries(vms).map(([name, vm]) => [name, vm.pid]));
		process.kill(vms['B']!.pid!, 'SIGKILL');
		await until(() => group.restarts === 1 && Object.values(vms).every(vm => vm.state === 'Running'));

		expect(groupSteps(events, names)).toEqual([`${strategy}: B KILLED, restart #1 of ${restarted} in 20`, `restarted ${restarted}`]);
		for (const [name, vm] of Object.entries(vms)) {
			const wasRestarted = restarted.includes(name);
			expect([name, vm.restarts, vm.pid === pids.get(name)]).toEqual([name, wasRestarted ? 1 : 0, !wasRestarted]);
		}

		// The members stopped for the restart died by the supervisor's hand: no failure, no second round.
		const stopped = Object.entries(vms).filter(([name]) => name !== 'B' && restarted.includes(name));
		for (const [, vm] of stopped) {
			expect(vm.deaths).toEqual([expect.objectContaining({reason: 'SHUTDOWN', initiator: 'supervisor'})]);
		}

		expect(vms['B']!.deaths).toEqual([expect.objectContaining({reason: 'KILLED', initiator: 'vmm'})]);
		expect(group.vms().map(vm => names.get(vm.cid))).toEqual(['A', 'B', 'C']);
	});
});

describe('giving up', () => {
	test('a member that crashes for ever makes the group stop every member past its intensity, reported as supervisor.group.gaveUp', async () => {
		const {supervisor, events} = supervise();
		const group = await supervisor.createGroup({strategy: 'one-for-all', ...FAST, intensity: {maxRestarts: 1, windowMs: 60_000}});
		const runs = guest('payload started', 'payload ready', 'hang');
		const a = await group.createVm({kernel: runs});
		const b = await group.createVm({kernel: guest('payload started', 'crash')});
		const c = await group.createVm({kernel: runs});
		const names = new Map([[a.cid, 'A'], [b.cid, 'B'], [c.cid, 'C']]);
		await a.start();
		await c.start();
		await b.start();
		const [deathA, deathB, deathC] = await Promise.all([a.died, b.died, c.died]);
		expect(deathB).toMatchObject({reason: 'CRASH'});
		expect(deathA).toMatchObject({reason: 'SHUTDOWN', initiator: 'supervisor'});
		expect(deathC).toMatchObject({reason: 'SHUTDOWN', initiator: 'supervisor'});
		expect([a.supervision, b.supervision, c.supervision]).toEqual(['gave-up', 'gave-up', 'gave-up']);
		const steps = groupSteps(events, names);
		expect(steps.slice(0, 2)).toEqual(['one-for-all: B CRASH, restart #1 of ABC in 20', 'restarted ABC']);
		// B, already dead, leaves at once; A and C once the stop that follows the report killed them.
		expect(steps.slice(2).sort()).toEqual(['A left (gave-up)', 'B left (gave-up)', 'C left (gave-up)', 'gave up after 1: B CRASH']);
		expect(steps.indexOf('gave up after 1: B CRASH')).toBeLessThan(Math.min(steps.indexOf('A left (gave-up)'), steps.indexOf('C left (gave-up)')));
		await until(() => group.state === 'done' && supervisor.vms().length === 0);
		await expect(group.createVm({kernel: runs})).rejects.toThrow(SupervisionGroupClosedError);
	});

	test('stop() of a member during the group backoff takes it out of the restart at once', async () => {
		const {supervisor, events} = supervise();
		const group = await supervisor.createGroup({strategy: 'one-for-one', backoff: {initialDelayMs: 60_000, maxDelayMs: 60_000, jitter: 0}});
		const vm = await group.createVm({kernel: guest('payload started', 'crash')});
		await vm.start();
		await until(() => events.some(event => event.type === 'supervisor.group.restartScheduled'));
		await expect(vm.stop()).resolves.toMatchObject({reason: 'CRASH'});
		expect(vm.supervision).toBe('cancelled');
		await until(() => supervisor.vms().length === 0);
		expect(group.state).toBe('active');
	});
});
