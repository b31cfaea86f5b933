/**
 * Restart policies with real VMs on crosvm-sim (built by `npm run build`): guests that crash a set
 * number of times and then run, that crash for ever (the supervisor gives up after exactly the
 * intensity's restarts), that reboot, and stops and shutdowns during a backoff. A guest's kernel is a
 * script file that the simulator reads at each launch, so a test rewrites it after the deaths it
 * wants. Every test ends with nothing leaked: no process, descriptor or temporary directory.
 */
import type {RestartPolicyOptions} from '../../src/services/restart/policy.js';
import type {SupervisedVm, SupervisorEvent} from '../../src/supervisor.js';
import {until} from '../helpers/until.js';
import {script, useRestartFixture} from './restart-fixture.js';

const RUNS = ['payload started', 'payload ready', 'hang'];
const CRASHES = ['console about to crash', 'crash'];

/** Fast and exact: 20 ms doubling, no jitter. */
const FAST: RestartPolicyOptions = {backoff: {initialDelayMs: 20, factor: 2, maxDelayMs: 1000, jitter: 0}, intensity: {maxRestarts: 3, windowMs: 60_000}};

const {guest, supervise: superviseWith} = useRestartFixture();

function supervise(restartPolicy: RestartPolicyOptions) {
	return superviseWith({restartPolicy});
}

/** After `deaths` deaths, the guest's kernel becomes `then` (read at the next launch). */
function changeAfter(vm: SupervisedVm, kernel: string, deaths: number, then: string[]): void {
	let seen = 0;
	vm.onDeath(() => {
		seen++;
		if (seen === deaths) {
			script(kernel, then);
		}
	});
}

function restartSteps(events: SupervisorEvent[]): string[] {
	return events.flatMap(event => {
		switch (event.type) {
			case 'supervisor.restart.scheduled': {
				return [`scheduled #${event.attempt} in ${event.delayMs} (${event.reason})`];
			}

			case 'supervisor.restart.restarted': {
				return [`restarted ${event.restarts}`];
			}

			case 'supervisor.restart.gaveUp': {
				return [`gave up after ${event.restarts} (${event.reason})`];
			}

			case 'supervisor.restart.cancelled': {
				return [`cancelled by ${event.initiator} after ${event.restarts}`];
			}

			default: {
				return [];
			}
		}
	});
}

describe('on-failure', () => {
	test('a guest that crashes twice and then runs is restarted twice with the same CID, then stops for good', async () => {
		const {supervisor, events} = supervise({restart: 'on-failure', ...FAST});
		const kernel = guest(CRASHES);
		const vm = await supervisor.createVm({kernel});
		changeAfter(vm, kernel, 2, RUNS);
		const {cid} = vm;
		await vm.start();
		await until(() => vm.restarts === 2 && vm.payloadState === 'Ready');
		expect(vm.cid).toBe(cid);
		expect(vm.state).toBe('Running');
		expect(vm.supervision).toBe('alive');
		expect(vm.deaths.map(death => death.reason)).toEqual(['CRASH', 'CRASH']);
		expect(supervisor.get(cid)).toBe(vm);
		expect(restartSteps(events)).toEqual(['scheduled #1 in 20 (CRASH)', 'restarted 1', 'scheduled #2 in 40 (CRASH)', 'restarted 2']);

		const death = await vm.stop();
		expect(death).toMatchObject({reason: 'SHUTDOWN', initiator: 'caller'});
		await expect(vm.died).resolves.toBe(death);
		expect(vm.supervision).toBe('ended');
		await until(() => supervisor.get(cid) === undefined);
		expect(events.filter(event => event.type === 'supervisor.cid.released')).toHaveLength(1);
	});

	test('a guest that crashes for ever is restarted exactly maxRestarts times, then the supervisor gives up', async () => {
		const {supervisor, events} = supervise({restart: 'on-failure', ...FAST});
		const vm = await supervisor.createVm({kernel: guest(CRASHES)});
		await vm.start();
		const death = await vm.died;
		expect(death.reason).toBe('CRASH');
		expect(vm.restarts).toBe(3);
		expect(vm.deaths).toHaveLength(4);
		expect(vm.supervision).toBe('gave-up');
		expect(restartSteps(events)).toEqual([
			'scheduled #1 in 20 (CRASH)', 'restarted 1',
			'scheduled #2 in 40 (CRASH)', 'restarted 2',
			'scheduled #3 in 80 (CRASH)', 'restarted 3',
			'gave up after 3 (CRASH)',
		]);
		await until(() => supervisor.get(vm.cid) === undefined);
	});

	test('a clean power-off is final under on-failure, and restarted under always', async () => {
		const {supervisor, events} = supervise({...FAST});
		const once = await supervisor.createVm({kernel: guest(['poweroff'])}, {restartPolicy: {restart: 'on-failure'}});
		await once.start();
		await expect(once.died).resolves.toMatchObject({reason: 'SHUTDOWN', initiator: 'guest'});
		expect(once.restarts).toBe(0);

		const kernel = guest(['poweroff']);
		const again = await supervisor.createVm({kernel}, {restartPolicy: {restart: 'always'}});
		changeAfter(again, kernel, 1, RUNS);
		await again.start();
		await until(() => again.restarts === 1 && again.state === 'Running');
		expect(restartSteps(events)).toEqual(['scheduled #1 in 20 (SHUTDOWN)', 'restarted 1']);
	});
});

describe('inspection', () => {
	test('the restart machine is the supervisor\'s child: an inspector sees it judge and give up', async () => {
		const seen: string[] = [];
		const {supervisor} = superviseWith({
			restartPolicy: {restart: 'on-failure', intensity: {maxRestarts: 0}},
			inspect(event) {
				const {actorRef} = event;
				if (event.type === '@xstate.snapshot' && 'id' in actorRef && typeof actorRef.id === 'string' && actorRef.id.startsWith('restart.')) {
					seen.push(`${actorRef.id} ${JSON.stringify((event.snapshot as {value?: unknown}).value)}`);
				}
			},
		});
		const vm = await supervisor.createVm({kernel: guest(CRASHES)});
		await vm.start();
		await expect(vm.died).resolves.toMatchObject({reason: 'CRASH'});
		expect(vm.supervision).toBe('gave-up');
		expect([...new Set(seen)]).toEqual([`restart.${vm.cid} "Idle"`, `restart.${vm.cid} {"Alive":"AwaitingReady"}`, `restart.${vm.cid} "GaveUp"`]);
	});
});

describe('reboot', () => {
	test('onReboot restart starts the VM again at once, with no backoff, even under never', async () => {
		const {supervisor, events} = supervise({restart: 'never', onReboot: 'restart', ...FAST});
		const kernel = guest(['console rebooting', 'reboot']);
		const vm = await supervisor.createVm({kernel});
		changeAfter(vm, kernel, 2, RUNS);
		await vm.start();
		await until(() => vm.restarts === 2 && vm.payloadState === 'Ready');
		expect(restartSteps(events)).toEqual(['scheduled #1 in 0 (REBOOT)', 'restarted 1', 'scheduled #2 in 0 (REBOOT)', 'restarted 2']);
	});

	test('by default a reboot is a death like any other: not a failure, so the VM stays dead', async () => {
		const {supervisor, events} = supervise({restart: 'on-failure', ...FAST});
		const vm = await supervisor.createVm({kernel: guest(['reboot'])});
		await vm.start();
		await expect(vm.died).resolves.toMatchObject({reason: 'REBOOT'});
		expect(restartSteps(events)).toEqual([]);
	});
});

describe('ending during a backoff', () => {
	const SLOW: RestartPolicyOptions = {restart: 'on-failure', backoff: {initialDelayMs: 60_000, jitter: 0, maxDelayMs: 60_000}};

	test('stop() cancels the restart at once and resolves with the last death; no restart ever starts', async () => {
		const {supervisor, events} = supervise(SLOW);
		const vm = await supervisor.createVm({kernel: guest(CRASHES)});
		await vm.start();
		await until(() => vm.supervision === 'backoff');
		const death = await vm.stop();
		expect(death).toMatchObject({reason: 'CRASH'});
		await expect(vm.died).resolves.toBe(death);
		expect(vm.supervision).toBe('cancelled');
		expect(restartSteps(events)).toEqual(['scheduled #1 in 60000 (CRASH)', 'cancelled by caller after 0']);
		await until(() => supervisor.get(vm.cid) === undefined);
	});

	test('kill() during a backoff cancels the restart too', async () => {
		const {supervisor, events} = supervise(SLOW);
		const vm = await supervisor.createVm({kernel: guest(CRASHES)});
		await vm.start();
		await until(() => vm.supervision === 'backoff');
		vm.kill();
		await expect(vm.died).resolves.toMatchObject({reason: 'CRASH'});
		expect(vm.supervision).toBe('cancelled');
		expect(restartSteps(events)).toEqual(['scheduled #1 in 60000 (CRASH)', 'cancelled by caller after 0']);
	});

	test('shutdown() cancels every pending restart and stops the VMs that run', async () => {
		const {supervisor, events} = supervise(SLOW);
		const crashing = await supervisor.createVm({kernel: guest(CRASHES)});
		const running = await supervisor.createVm({kernel: guest(RUNS)});
		await Promise.all([crashing.start(), running.start()]);
		await until(() => crashing.supervision === 'backoff');
		await supervisor.shutdown({stopTimeoutMs: 1000});
		expect(crashing.supervision).toBe('cancelled');
		await expect(running.died).resolves.toMatchObject({reason: 'SHUTDOWN', initiator: 'supervisor'});
		expect(running.supervision).toBe('ended');
		expect(supervisor.vms()).toEqual([]);
		expect(restartSteps(events)).toEqual(['scheduled #1 in 60000 (CRASH)', 'cancelled by supervisor after 0']);
	});
});

describe('operations across restarts', () => {
	test('a restarted VM is suspended and resumed through the same handle: the operations follow the current life', async () => {
		const {supervisor} = supervise({restart: 'on-failure', ...FAST});
		const kernel = guest(CRASHES);
		const vm = await supervisor.createVm({kernel});
		changeAfter(vm, kernel, 1, RUNS);
		await vm.start();
		const firstPid = vm.pid;
		await until(() => vm.restarts === 1 && vm.payloadState === 'Ready');
		expect(vm.pid).not.toBe(firstPid);
		await vm.suspend();
		expect(vm.execution).toBe('suspended');
		await vm.resume();
		expect(vm.execution).toBe('running');
		const death = await vm.stop({timeoutMs: 5000});
		expect(death?.reason).toBe('SHUTDOWN');
	});
});
