import {afterEach, describe, expect, test} from '@jest/globals';
import {VmControlError, VmStateError} from '../../src/errors.js';
import {DeathReason} from '../../src/services/death/reason.js';
import {createVmHandle, vmOperations} from '../../src/vm.js';
import {fakeVm, runningFakeVm, settle, type FakeVmOptions} from './vm-fakes.js';

type FakeVm = ReturnType<typeof fakeVm>;

const made: FakeVm[] = [];

async function running(options: FakeVmOptions = {}): Promise<FakeVm> {
	const vm = await runningFakeVm(options);
	made.push(vm);
	return vm;
}

afterEach(async () => {
	for (const vm of made.splice(0)) {
		vm.actor.stop();
	}

	await settle();
});

function execution(vm: FakeVm): unknown {
	const {value} = vm.actor.getSnapshot();
	return typeof value === 'object' && 'Running' in value && typeof value['Running'] === 'object' ? value['Running']['execution'] : undefined;
}

describe('suspend and resume (the execution region)', () => {
	test('suspend, then resume: each request sent once, the region follows', async () => {
		const vm = await running();
		const operations = vmOperations({actor: vm.actor});
		expect(operations.execution).toBe('running');
		await operations.suspend();
		expect(execution(vm)).toBe('suspended');
		// Already there: no second request.
		await operations.suspend();
		await operations.resume();
		await operations.resume();
		expect(execution(vm)).toBe('running');
		expect(vm.controlRequests).toEqual(['suspend', 'resume']);
	});

	test('concurrent suspends share one request; a resume while suspending is refused', async () => {
		const vm = await running();
		const operations = vmOperations({actor: vm.actor});
		const first = operations.suspend();
		const second = operations.suspend();
		await expect(operations.resume()).rejects.toBeInstanceOf(VmStateError);
		await Promise.all([first, second]);
		expect(vm.controlRequests).toEqual(['suspend']);
	});

	test('a refused suspend rejects with the driver\'s VmControlError and leaves the VM running; the next one works', async () => {
		const vm = await running({controlAnswers: ['fail']});
		const operations = vmOperations({actor: vm.actor});
		const error = await operations.suspend().catch((error_: unknown) => error_);
		expect(error).toBeInstanceOf(VmControlError);
		expect(error).toMatchObject({operation: 'suspend', exitCode: 1});
		expect(execution(vm)).toBe('running');
		await operations.suspend();
		expect(execution(vm)).toBe('suspended');
	});

	test('a refused resume leaves the VM suspended', async () => {
		const vm = await running({controlAnswers: ['ok', 'fail']});
		const operations = vmOperations({actor: vm.actor});
		await operations.suspend();
		await expect(operations.resume()).rejects.toBeInstanceOf(VmControlError);
		expect(execution(vm)).toBe('suspended');
	});

	test('refused with VmStateError before start, after death, and once the VMM exited', async () => {
		const vm = fakeVm();
		made.push(vm);
		vm.actor.start();
		const operations = vmOperations({actor: vm.actor});
		await expect(operations.suspend()).rejects.toBeInstanceOf(VmStateError);
		await expect(operations.resume()).rejects.toBeInstanceOf(VmStateError);
		await expect(operations.setBalloon(1)).rejects.toBeInstanceOf(VmStateError);
		await expect(operations.balloonStats()).rejects.toBeInstanceOf(VmStateError);
		expect(operations.execution).toBeUndefined();
		vm.actor.send({type: 'START'});
		await settle();
		vm.vmm.exit({exitCode: 0});
		await settle();
		expect(vm.actor.getSnapshot().value).toBe('Dead');
		await expect(operations.suspend()).rejects.toBeInstanceOf(VmStateError);
		await expect(operations.setBalloon(1)).rejects.toBeInstanceOf(VmStateError);
	});

	test('a VM that dies while suspending rejects the suspend with VmStateError', async () => {
		const vm = await running({controlAnswers: ['never']});
		const suspending = vmOperations({actor: vm.actor}).suspend();
		await settle();
		expect(execution(vm)).toBe('suspending');
		vm.vmm.exit({exitCode: 33});
		await expect(suspending).rejects.toBeInstanceOf(VmStateError);
	});

	test('a suspended VM can be stopped and killed', async () => {
		const stopped = await running();
		await vmOperations({actor: stopped.actor}).suspend();
		stopped.actor.send({type: 'STOP'});
		await settle();
		expect(stopped.actor.getSnapshot().context.death).toMatchObject({reason: DeathReason.SHUTDOWN});

		const killed = await running();
		const handle = createVmHandle(killed.actor);
		await handle.suspend();
		handle.kill();
		await settle();
		expect(killed.vmm.signals).toEqual(['SIGKILL']);
		expect(killed.actor.getSnapshot().context.death).toMatchObject({reason: DeathReason.KILLED, initiator: 'caller'});
	});
});

describe('the hang-up watch does not count time spent suspended (simulated clock)', () => {
	test('suspended past the timeout: no hang-up; after resume the whole timeout starts over', async () => {
		const vm = await running({detectHangup: true, bootHangupTimeoutMs: 300});
		const operations = vmOperations({actor: vm.actor});
		await vm.advance(200);
		await operations.suspend();
		await vm.advance(10_000);
		expect(vm.vmm.signals).toEqual([]);
		await operations.resume();
		await vm.advance(299);
		expect(vm.vmm.signals).toEqual([]);
		await vm.advance(1);
		expect(vm.vmm.signals).toEqual(['SIGKILL']);
		expect(vm.actor.getSnapshot().context.death).toMatchObject({reason: DeathReason.HANGUP});
	});

	test('a suspend that fails after the deadline passed starts the watch over', async () => {
		const vm = await running({detectHangup: true, bootHangupTimeoutMs: 300, controlAnswers: ['held']});
		const suspending = vmOperations({actor: vm.actor}).suspend();
		await vm.advance(1000);
		expect(vm.vmm.signals).toEqual([]);
		vm.answerControl(new VmControlError('suspend', 'crosvm suspend exited with 1 (fake)'));
		await expect(suspending).rejects.toBeInstanceOf(VmControlError);
		await vm.advance(299);
		expect(vm.vmm.signals).toEqual([]);
		await vm.advance(1);
		expect(vm.vmm.signals).toEqual(['SIGKILL']);
	});

	test('a failed suspend leaves the watch running', async () => {
		const vm = await running({detectHangup: true, bootHangupTimeoutMs: 300, controlAnswers: ['fail']});
		await vmOperations({actor: vm.actor}).suspend().catch(() => undefined);
		await vm.advance(300);
		expect(vm.vmm.signals).toEqual(['SIGKILL']);
	});
});
