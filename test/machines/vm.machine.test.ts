import {afterEach, describe, expect, test} from '@jest/globals';
import {config as rxjsConfig, filter, firstValueFrom} from 'rxjs';
import {CROSVM_SIM_HINT, InvalidConfigError, VmSpawnError, VmStateError} from '../../src/errors.js';
import {PAYLOAD_REFUSAL_WINDOW_MS, PAYLOAD_REFUSALS_PER_WINDOW, STOP_RETRY_INTERVAL_MS} from '../../src/machines/vm.machine.js';
import {DeathReason} from '../../src/services/death/reason.js';
import {MAX_TIMEOUT_MS} from '../../src/services/config/timeouts.js';
import {createVm, createVmHandle} from '../../src/vm.js';
import type {VmDeath} from '../../src/types.js';
import {fakeVm, runningFakeVm, settle} from './vm-fakes.js';

type FakeVm = ReturnType<typeof fakeVm>;

/** Every fake VM a test made: stopped afterwards (which kills a fake VMM still running). */
const made: FakeVm[] = [];

async function running(options: Parameters<typeof runningFakeVm>[0] = {}): Promise<FakeVm> {
	const vm = await runningFakeVm(options);
	made.push(vm);
	expect(vm.actor.getSnapshot().matches('Running')).toBe(true);
	return vm;
}

function death(vm: FakeVm): VmDeath | undefined {
	return vm.actor.getSnapshot().context.death;
}

afterEach(async () => {
	for (const vm of made.splice(0)) {
		vm.actor.stop();
	}

	await settle();
});

describe('the boot hang-up watch (simulated clock)', () => {
	test('fires at bootHangupTimeoutMs, not a millisecond before: hangup, SIGKILL, HANGUP from the guest', async () => {
		const vm = await running({detectHangup: true, bootHangupTimeoutMs: 300});
		await vm.advance(299);
		expect(vm.vmm.signals).toEqual([]);
		await vm.advance(1);
		expect(vm.vmm.signals).toEqual(['SIGKILL']);
		expect(vm.actor.getSnapshot().value).toBe('Dead');
		expect(death(vm)).toMatchObject({reason: DeathReason.HANGUP, signal: 'SIGKILL', payloadState: 'Starting', initiator: 'guest'});
		expect(vm.types()).toEqual(['started', 'hangup', 'died']);
		expect(vm.emitted[1]).toMatchObject({type: 'hangup', initiator: 'guest', timeoutMs: 300});
	});

	test('does not fire once the payload started (the caller or the guest reported it)', async () => {
		const byGuest = await running({detectHangup: true, bootHangupTimeoutMs: 300});
		const byCaller = await running({detectHangup: true, bootHangupTimeoutMs: 300});
		await byGuest.advance(100);
		byGuest.actor.send({type: 'PAYLOAD.REPORT', state: 'Ready', initiator: 'guest'});
		byCaller.actor.send({type: 'PAYLOAD.REPORT', state: 'Started', initiator: 'caller'});
		await byGuest.advance(10_000);
		await byCaller.advance(10_000);
		for (const vm of [byGuest, byCaller]) {
			expect(vm.vmm.signals).toEqual([]);
			expect(vm.types()).not.toContain('hangup');
			vm.vmm.exit({exitCode: 0});
		}

		await settle();
		expect(death(byGuest)).toMatchObject({reason: DeathReason.SHUTDOWN, payloadState: 'Ready'});
		expect(death(byCaller)).toMatchObject({reason: DeathReason.SHUTDOWN, payloadState: 'Started'});
	});

	test('only a VM that watches the hang-up holds a timer for it, and a resume starts it over', async () => {
		const watched = await running({detectHangup: true, bootHangupTimeoutMs: 300});
		const unwatched = await running({detectHangup: false, bootHangupTimeoutMs: 300});
		expect(watched.actor.getSnapshot().children.hangupWatch).toBeDefined();
		expect(unwatched.actor.getSnapshot().children.hangupWatch).toBeUndefined();
		unwatched.actor.send({type: 'EXECUTION.RESUMED'});
		expect(unwatched.actor.getSnapshot().children.hangupWatch).toBeUndefined();
		watched.actor.send({type: 'PAYLOAD.REPORT', state: 'Started', initiator: 'caller'});
		expect(watched.actor.getSnapshot().children.hangupWatch).toBeUndefined();
		for (const vm of [watched, unwatched]) {
			vm.vmm.exit({exitCode: 0});
		}

		await settle();
	});

	test('does not fire without detectHangup', async () => {
		const vm = await running({detectHangup: false, bootHangupTimeoutMs: 300});
		await vm.advance(10_000);
		expect(vm.vmm.signals).toEqual([]);
		vm.vmm.exit({exitCode: 0});
		await settle();
		expect(death(vm)).toMatchObject({reason: DeathReason.SHUTDOWN, payloadState: 'Starting'});
	});

	test('an exit before the deadline ends the watch: CRASH at once, no hang-up later', async () => {
		const vm = await running({detectHangup: true, bootHangupTimeoutMs: 10_000});
		await vm.advance(100);
		vm.vmm.exit({exitCode: 33});
		await settle();
		expect(death(vm)).toMatchObject({reason: DeathReason.CRASH, exitCode: 33, payloadState: 'Starting', initiator: 'vmm'});
		await vm.advance(10_000);
		expect(vm.types()).toEqual(['started', 'died']);
	});

	test('an exit seen before the deadline timer runs wins, though its death is not yet decided', async () => {
		const vm = await running({detectHangup: true, bootHangupTimeoutMs: 300});
		// Exit and deadline in the same instant: the exit is processed first, the death comes later.
		vm.vmm.exit({exitCode: 33});
		await Promise.resolve();
		await Promise.resolve();
		vm.clock.increment(300);
		await settle();
		expect(vm.vmm.signals).toEqual([]);
		expect(death(vm)).toMatchObject({reason: DeathReason.CRASH});
	});

	test('a failure text wins over the hang-up', async () => {
		const vm = await running({detectHangup: true, bootHangupTimeoutMs: 2000});
		vm.vmm.failureText = 'MICRODROID_FAILED_TO_CONNECT_TO_VIRTUALIZATION_SERVICE';
		await vm.advance(2000);
		expect(death(vm)).toMatchObject({reason: DeathReason.MICRODROID_FAILED_TO_CONNECT_TO_VIRTUALIZATION_SERVICE, signal: 'SIGKILL'});
		expect(vm.types()).toContain('hangup');
	});
});

describe('stop (simulated clock)', () => {
	test('a delivered request ends in SHUTDOWN without a kill', async () => {
		const vm = await running({stopAnswers: ['shutdown']});
		vm.actor.send({type: 'STOP', timeoutMs: 1000, initiator: 'caller'});
		await settle();
		expect(vm.stopRequests).toEqual([expect.objectContaining({pid: vm.vmm.pid, tempDir: vm.tempDirs[0]})]);
		expect(death(vm)).toMatchObject({reason: DeathReason.SHUTDOWN, exitCode: 0, initiator: 'caller'});
		expect(vm.types()).toEqual(['started', 'stopping', 'died']);
		await vm.advance(1000);
		expect(vm.vmm.signals).toEqual([]);
	});

	test('a VMM that ignores the request is killed at the stop timeout, not before: KILLED by the caller', async () => {
		const vm = await running({stopAnswers: ['ignored']});
		vm.actor.send({type: 'STOP', timeoutMs: 400, initiator: 'caller'});
		await vm.advance(399);
		expect(vm.vmm.signals).toEqual([]);
		await vm.advance(1);
		expect(vm.vmm.signals).toEqual(['SIGKILL']);
		expect(death(vm)).toMatchObject({reason: DeathReason.KILLED, signal: 'SIGKILL', initiator: 'caller'});
		expect(vm.emitted.filter(event => event.type !== 'started')).toEqual([
			{type: 'stopping', cid: 3000, initiator: 'caller', timeoutMs: 400},
			{type: 'killing', cid: 3000, initiator: 'caller', pid: vm.vmm.pid},
			expect.objectContaining({type: 'died'}),
		]);
	});

	test('a request that never answers is covered by the timeout too', async () => {
		const vm = await running({stopAnswers: ['never']});
		vm.actor.send({type: 'STOP', timeoutMs: 250});
		await vm.advance(250);
		expect(death(vm)).toMatchObject({reason: DeathReason.KILLED, initiator: 'caller'});
	});

	test('a failed request is repeated every 100 ms until one is delivered: SHUTDOWN', async () => {
		const vm = await running({stopAnswers: ['fail', 'fail', 'shutdown']});
		vm.actor.send({type: 'STOP', timeoutMs: 5000, initiator: 'supervisor'});
		await settle();
		expect(vm.stopRequests).toHaveLength(1);
		await vm.advance(STOP_RETRY_INTERVAL_MS - 1);
		expect(vm.stopRequests).toHaveLength(1);
		await vm.advance(1);
		expect(vm.stopRequests).toHaveLength(2);
		await vm.advance(STOP_RETRY_INTERVAL_MS);
		expect(vm.stopRequests).toHaveLength(3);
		expect(death(vm)).toMatchObject({reason: DeathReason.SHUTDOWN, initiator: 'supervisor'});
		expect(vm.logger.lines.filter(line => line.message.startsWith('Stop request failed'))).toHaveLength(2);
	});

	test('requests that keep failing are ended by the timeout: KILLED', async () => {
		const vm = await running({stopAnswers: Array.from({length: 100}, () => 'fail' as const)});
		vm.actor.send({type: 'STOP', timeoutMs: 1000});
		await settle();
		for (let elapsed = 0; elapsed < 1000; elapsed += STOP_RETRY_INTERVAL_MS) {
			await vm.advance(STOP_RETRY_INTERVAL_MS);
		}

		expect(vm.stopRequests).toHaveLength(10);
		expect(death(vm)).toMatchObject({reason: DeathReason.KILLED, initiator: 'caller'});
	});

	test('concurrent stop() calls share one stop: the first timeout counts, all get the same death', async () => {
		const vm = fakeVm({stopAnswers: ['ignored']});
		made.push(vm);
		const handle = createVmHandle(vm.actor);
		vm.actor.start();
		await handle.start();
		const stops = [handle.stop({timeoutMs: 300}), handle.stop({timeoutMs: 60_000}), handle.stop()];
		await vm.advance(300);
		const [first, second, third] = await Promise.all(stops);
		expect(first).toMatchObject({reason: DeathReason.KILLED});
		expect(second).toBe(first);
		expect(third).toBe(first);
		expect(vm.emitted.filter(event => event.type === 'stopping')).toEqual([{type: 'stopping', cid: 3000, initiator: 'caller', timeoutMs: 300}]);
	});

	test('a stop asked for while launching is carried out once running', async () => {
		const vm = fakeVm({launch: 'held', stopAnswers: ['shutdown']});
		made.push(vm);
		const handle = createVmHandle(vm.actor);
		vm.actor.start();
		const starting = handle.start();
		const stopping = handle.stop({timeoutMs: 5000});
		await settle();
		expect(vm.actor.getSnapshot().matches({NotStarted: 'launching'})).toBe(true);
		vm.launch.finish();
		await starting;
		await settle();
		await expect(stopping).resolves.toMatchObject({reason: DeathReason.SHUTDOWN, initiator: 'caller'});
		expect(vm.types()).toEqual(['started', 'stopping', 'died']);
	});

	test('a STOP with a timeout timers cannot keep gets the VM\'s stop timeout, not an instant kill', async () => {
		for (const timeoutMs of [Number.NaN, -1, 2 ** 31, 30 * 24 * 3_600_000, 1.5]) {
			const vm = await running({stopTimeoutMs: 700, stopAnswers: ['ignored']});
			vm.actor.send({type: 'STOP', timeoutMs});
			await vm.advance(699);
			expect(vm.vmm.signals).toEqual([]);
			await vm.advance(1);
			expect(death(vm)).toMatchObject({reason: DeathReason.KILLED});
			expect(vm.emitted.find(event => event.type === 'stopping')).toMatchObject({timeoutMs: 700});
		}
	});
});

describe('kill (simulated clock)', () => {
	test('KILL twice sends SIGKILL once; KILL after death does nothing', async () => {
		const vm = await running();
		vm.vmm.unkillable = true;
		vm.actor.send({type: 'KILL', initiator: 'caller'});
		vm.actor.send({type: 'KILL', initiator: 'supervisor'});
		await settle();
		expect(vm.vmm.signals).toEqual(['SIGKILL']);
		vm.vmm.exit({signal: 'SIGKILL'});
		await settle();
		vm.actor.send({type: 'KILL'});
		expect(death(vm)).toMatchObject({reason: DeathReason.KILLED, initiator: 'caller'});
		expect(vm.types()).toEqual(['started', 'killing', 'died']);
	});

	test('a kill asked for while launching is carried out once running', async () => {
		const vm = fakeVm({launch: 'held'});
		made.push(vm);
		vm.actor.start();
		vm.actor.send({type: 'START'});
		vm.actor.send({type: 'KILL', initiator: 'caller'});
		await settle();
		expect(vm.vmm.signals).toEqual([]);
		vm.launch.finish();
		await settle();
		expect(vm.vmm.signals).toEqual(['SIGKILL']);
		expect(death(vm)).toMatchObject({reason: DeathReason.KILLED, signal: 'SIGKILL', initiator: 'caller'});
		expect(vm.types()).toEqual(['started', 'killing', 'died']);
	});

	test('a kill during a stop ends it at once, and the stop timeout kills nothing more', async () => {
		const vm = await running({stopAnswers: ['ignored']});
		vm.vmm.unkillable = true;
		vm.actor.send({type: 'STOP', timeoutMs: 500});
		await vm.advance(100);
		vm.actor.send({type: 'KILL', initiator: 'supervisor'});
		await vm.advance(400);
		expect(vm.vmm.signals).toEqual(['SIGKILL']);
		vm.vmm.exit({signal: 'SIGKILL'});
		await settle();
		expect(death(vm)).toMatchObject({reason: DeathReason.KILLED, initiator: 'caller'});
		expect(vm.emitted.filter(event => event.type === 'killing')).toHaveLength(1);
	});
});

describe('start', () => {
	test('a failed launch ends Failed with the typed error, reported once; output carries cid and error', async () => {
		const vm = fakeVm({launch: 'held'});
		const outputs: unknown[] = [];
		vm.actor.subscribe({complete: () => outputs.push(vm.actor.getSnapshot().output)});
		vm.actor.start();
		vm.actor.send({type: 'START', initiator: 'supervisor'});
		await settle();
		const error = new VmSpawnError('VMM_NOT_FOUND', '/fake/crosvm', 'VMM /fake/crosvm does not exist\nforged line');
		vm.launch.fail(error);
		await settle();
		expect(vm.actor.getSnapshot().value).toBe('Failed');
		expect(vm.actor.getSnapshot().context.startError).toBe(error);
		expect(vm.emitted).toEqual([{type: 'failed', cid: 3000, initiator: 'supervisor', error}]);
		expect(outputs).toEqual([{cid: 3000, death: undefined, error}]);
		expect(vm.logger.lines.filter(line => line.message.startsWith('Failed to start')).map(line => [line.level, line.message])).toEqual([['debug', `Failed to start the VM: VMM /fake/crosvm does not exist\\nforged line${CROSVM_SIM_HINT}`]]);
	});

	test('a death gives the output {cid, death, error: undefined}', async () => {
		const vm = await running();
		vm.vmm.exit({exitCode: 32});
		await settle();
		expect(vm.actor.getSnapshot().output).toEqual({cid: 3000, death: death(vm), error: undefined});
		expect(death(vm)).toMatchObject({reason: DeathReason.REBOOT});
	});

	test('the requester is logged when the VM starts, escaped', async () => {
		const vm = await running();
		expect(vm.logger.lines.map(line => line.message)).toContain('Starting for uid 1000, sid \'test\', debug pid 1');
		const hostile = await running({requester: {uid: 0, sid: 'x\ninfo [vm 1] forged', debugPid: 2}});
		expect(hostile.logger.lines.map(line => line.message)).toContain('Starting for uid 0, sid \'x\\ninfo [vm 1] forged\', debug pid 2');
	});
});

describe('the VM actor stopped from outside (simulated clock)', () => {
	test('while running: the VMM is killed, then its directory and streams released', async () => {
		const vm = await running();
		vm.actor.stop();
		expect(vm.vmm.signals).toEqual(['SIGKILL']);
		await settle();
		expect(vm.vmm.disposed).toBe(1);
		expect(vm.leftTempDir()).toBe(false);
		expect(vm.emitted.map(event => event.type)).toEqual(['started']);
	});

	test('after the VMM exited, before its death was decided: released, nothing killed', async () => {
		const vm = await running();
		vm.vmm.exit({exitCode: 33});
		await Promise.resolve();
		await Promise.resolve();
		expect(vm.actor.getSnapshot().matches({Running: {process: 'exited'}})).toBe(true);
		vm.actor.stop();
		await settle();
		expect(vm.vmm.signals).toEqual([]);
		expect(vm.vmm.disposed).toBe(1);
		expect(vm.leftTempDir()).toBe(false);
	});

	test('while launching: the launch is aborted and undone; start() rejects, stop() resolves with nothing', async () => {
		const vm = fakeVm({launch: 'held'});
		const handle = createVmHandle(vm.actor);
		vm.actor.start();
		const starting = handle.start();
		await settle();
		vm.actor.stop();
		await expect(starting).rejects.toThrow(VmStateError);
		expect(vm.launch.signal?.aborted).toBe(true);
		vm.launch.finish();
		await settle();
		expect(vm.leftTempDir()).toBe(false);
		await expect(handle.stop()).resolves.toBeUndefined();
	});
});

describe('death', () => {
	test('when `died` is heard the VM is Dead and its directory and streams are released', async () => {
		const vm = await running();
		const seen: Array<{value: unknown; left: boolean; disposed: number}> = [];
		vm.actor.on('died', () => {
			seen.push({value: vm.actor.getSnapshot().value, left: vm.leftTempDir(), disposed: vm.vmm.disposed});
		});
		vm.vmm.exit({exitCode: 0});
		await settle();
		expect(seen).toEqual([{value: 'Dead', left: false, disposed: 1}]);
	});

	test('guest text is escaped and bounded in the log, and kept whole in the death', async () => {
		const vm = await running();
		const text = `MY_REASON|context\n2026-01-01 info [vm 1] forged line\u001b[31m${'x'.repeat(50_000)}`;
		vm.vmm.failureText = text;
		vm.vmm.exit({exitCode: 1});
		await settle();
		expect(death(vm)).toMatchObject({failureReason: 'MY_REASON', failureContext: text.slice('MY_REASON|'.length)});
		const logged = vm.logger.lines.find(line => line.message.startsWith('VM returned failure reason'))!.message;
		expect(logged).not.toMatch(/[\n\r]/);
		expect(logged).not.toContain('\u001b');
		expect(logged).toContain('context\\n2026-01-01 info [vm 1] forged line\\u001b[31m');
		expect(logged.length).toBeLessThan(1200);
		expect(logged).toContain('more characters');
	});

	test('a watcher that fails still ends the VM: INFRASTRUCTURE_ERROR', async () => {
		const vm = await running();
		vm.vmm.exit({}, 'the VMM exited without a status');
		await settle();
		expect(death(vm)).toMatchObject({reason: DeathReason.INFRASTRUCTURE_ERROR, initiator: 'vmm'});
	});
});

describe('a guest flooding refused payload reports', () => {
	test('gets the first few logged and emitted, then counts, a summary per window and at death; the death still comes', async () => {
		const vm = await running();
		vm.actor.send({type: 'PAYLOAD.REPORT', state: 'Finished', initiator: 'guest'});
		const flood = 50_000;
		for (let index = 0; index < flood; index++) {
			vm.actor.send({type: 'PAYLOAD.REPORT', state: 'Ready', initiator: 'guest'});
		}

		await settle();
		const refusedEvents = () => vm.emitted.filter(event => event.type === 'payload-refused');
		const warnings = () => vm.logger.lines.filter(line => line.level === 'warn').map(line => line.message);
		expect(refusedEvents()).toHaveLength(PAYLOAD_REFUSALS_PER_WINDOW);
		expect(refusedEvents()[0]).toEqual({type: 'payload-refused', cid: 3000, initiator: 'guest', from: 'Finished', to: 'Ready', message: 'Invalid payload state transition from Finished to Ready'});
		expect(warnings()).toHaveLength(PAYLOAD_REFUSALS_PER_WINDOW);
		expect(vm.actor.getSnapshot().matches({Running: {refusals: 'muted'}})).toBe(true);

		// The window ends: one summary, and a new budget.
		await vm.advance(PAYLOAD_REFUSAL_WINDOW_MS);
		expect(warnings().at(-1)).toBe(`${flood - PAYLOAD_REFUSALS_PER_WINDOW} more payload reports refused (${PAYLOAD_REFUSALS_PER_WINDOW} per ${PAYLOAD_REFUSAL_WINDOW_MS} ms are logged one by one)`);
		for (let index = 0; index < PAYLOAD_REFUSALS_PER_WINDOW + 5; index++) {
			vm.actor.send({type: 'PAYLOAD.REPORT', state: 'Started', initiator: 'guest'});
		}

		expect(refusedEvents()).toHaveLength(2 * PAYLOAD_REFUSALS_PER_WINDOW);
		// The VM dies while muted: the count so far is logged, and the death is reported.
		vm.vmm.exit({exitCode: 0});
		await settle();
		expect(warnings().at(-1)).toBe(`5 more payload reports refused (${PAYLOAD_REFUSALS_PER_WINDOW} per ${PAYLOAD_REFUSAL_WINDOW_MS} ms are logged one by one)`);
		expect(warnings()).toHaveLength(2 * PAYLOAD_REFUSALS_PER_WINDOW + 2);
		expect(death(vm)).toMatchObject({reason: DeathReason.SHUTDOWN, payloadState: 'Finished'});
		expect(vm.types().at(-1)).toBe('died');
	});
});

describe('timeouts from outside are checked', () => {
	const bad = [Number.NaN, -1, 1.5, 2 ** 31, 30 * 24 * 3_600_000, Number.POSITIVE_INFINITY];

	test.each(['stopTimeoutMs', 'bootHangupTimeoutMs'] as const)('createVm refuses a bad %s with InvalidConfigError naming it', field => {
		for (const value of bad) {
			expect(() => createVm({kernel: '/k'}, {cid: 3000, [field]: value})).toThrow(expect.objectContaining({name: 'InvalidConfigError', field}));
		}

		expect(() => createVm({kernel: '/k'}, {cid: 3000, [field]: MAX_TIMEOUT_MS, logger: fakeVm().logger}).actor.stop()).not.toThrow();
	});

	test('stop() rejects a bad timeoutMs with InvalidConfigError and leaves the VM running', async () => {
		const vm = await running();
		const handle = createVmHandle(vm.actor);
		for (const timeoutMs of bad) {
			await expect(handle.stop({timeoutMs})).rejects.toThrow(InvalidConfigError);
			await expect(handle.stop({timeoutMs})).rejects.toMatchObject({field: 'timeoutMs'});
		}

		expect(vm.types()).toEqual(['started']);
		expect(handle.state).toBe('Running');
	});

	test('a machine input with a bad timeout is refused', () => {
		const vm = fakeVm({stopTimeoutMs: 2 ** 31});
		const errors: unknown[] = [];
		vm.actor.subscribe({error: error => errors.push(error)});
		vm.actor.start();
		expect(errors).toEqual([expect.objectContaining({name: 'InvalidConfigError', field: 'stopTimeoutMs'})]);
	});
});

describe('callbacks that throw never reach the host', () => {
	test('an events$ subscriber that throws (directly or through pipe) is logged; the others and the VM carry on', async () => {
		const vm = fakeVm();
		made.push(vm);
		const handle = createVmHandle(vm.actor);
		const unhandled: unknown[] = [];
		const previous = rxjsConfig.onUnhandledError;
		rxjsConfig.onUnhandledError = error => unhandled.push(error);
		try {
			handle.events$.subscribe(() => {
				throw new Error('subscriber bug');
			});
			handle.events$.pipe(filter(event => event.type === 'died')).subscribe({
				next() {
					throw new Error('piped subscriber bug\nforged line');
				},
			});
			handle.snapshots$.subscribe(() => {
				throw new Error('snapshot subscriber bug');
			});
			const seen: string[] = [];
			handle.events$.subscribe(event => seen.push(event.type));
			const died = firstValueFrom(handle.events$.pipe(filter(event => event.type === 'died')));
			vm.actor.start();
			await handle.start();
			vm.vmm.exit({exitCode: 0});
			await expect(died).resolves.toMatchObject({type: 'died'});
			await settle();
			expect(seen).toEqual(['started', 'died']);
			expect(handle.state).toBe('Dead');
			expect(unhandled).toEqual([]);
			const errors = vm.logger.lines.filter(line => line.level === 'error').map(line => line.message);
			expect(errors).toEqual(expect.arrayContaining(['An events$ subscriber threw: Error: subscriber bug', 'An events$ subscriber threw: Error: piped subscriber bug\\nforged line']));
			expect(errors.filter(message => message.startsWith('A snapshots$ subscriber threw'))).not.toHaveLength(0);
		} finally {
			rxjsConfig.onUnhandledError = previous;
		}
	});

	test('a handle asked only after the death still has it: died, onDied at once, events$ completed at once', async () => {
		const vm = await running();
		const handle = createVmHandle(vm.actor);
		const called: string[] = [];
		const unsubscribe = handle.onDied(() => called.push('unsubscribed'));
		unsubscribe();
		vm.vmm.exit({exitCode: 0});
		await settle();
		expect(handle.state).toBe('Dead');
		await expect(handle.died).resolves.toMatchObject({reason: DeathReason.SHUTDOWN});
		handle.onDied(death => called.push(`late ${death.reason}`));
		const seen: string[] = [];
		let completed = false;
		handle.events$.subscribe({next: event => seen.push(event.type), complete: () => completed = true});
		expect({called, seen, completed}).toEqual({called: [`late ${DeathReason.SHUTDOWN}`], seen: [], completed: true});
		expect(handle.events$).toBe(handle.events$);
	});

	test('an onDied callback that throws is logged, before and after the death; the others are called', async () => {
		const vm = await running();
		const handle = createVmHandle(vm.actor);
		const called: string[] = [];
		handle.onDied(() => {
			throw new Error('callback bug');
		});
		handle.onDied(() => called.push('second'));
		vm.vmm.exit({exitCode: 0});
		await handle.died;
		expect(() => handle.onDied(() => {
			throw new Error('late callback bug');
		})).not.toThrow();
		expect(called).toEqual(['second']);
		expect(vm.logger.lines.filter(line => line.level === 'error').map(line => line.message)).toEqual(['A death callback threw: Error: callback bug', 'A death callback threw: Error: late callback bug']);
	});
});
