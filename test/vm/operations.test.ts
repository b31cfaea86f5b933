import {describe, expect, test} from '@jest/globals';
import {InvalidConfigError, VmStateError} from '../../src/errors.js';
import {DeathReason} from '../../src/services/death/reason.js';
import {vmOperations} from '../../src/vm.js';
import {useVmFixture} from '../helpers/vm-fixture.js';

const MIB = 1024 * 1024;

describe('suspend, resume and the balloon on crosvm-sim', () => {
	const {guest, vm} = useVmFixture();

	test('suspend pauses the guest and resume lets it go on; a suspended VM stops gracefully', async () => {
		// The sleep leaves the suspend request (a `crosvm suspend` process) time to land on a loaded
		// machine; the wait below outlasts it, so a guest that was not paused would print 'two'.
		const machine = vm({kernel: guest('console one', 'sleep 1500', 'console two', 'hang'), capture: {console: true}});
		const operations = vmOperations(machine);
		const lines: string[] = [];
		operations.console$.subscribe(line => lines.push(line));
		await machine.start();
		await operations.suspend();
		expect(operations.execution).toBe('suspended');
		// The guest is paused in its sleep: nothing more arrives while suspended.
		await new Promise(resolve => {
			setTimeout(resolve, 2500);
		});
		expect(lines).toEqual(['one']);
		await operations.resume();
		expect(operations.execution).toBe('running');
		await operations.suspend();
		const death = await machine.stop({timeoutMs: 5000});
		expect(death).toMatchObject({reason: DeathReason.SHUTDOWN, initiator: 'caller'});
	});

	test('setBalloon and balloonStats: typed statistics as crosvm prints them', async () => {
		const machine = vm({kernel: guest('hang'), memoryMib: 512});
		const operations = vmOperations(machine);
		await machine.start();
		const before = await operations.balloonStats();
		expect(before).toEqual({actualBytes: 0, stats: expect.objectContaining({totalMemory: 512 * MIB, swapIn: 0})});
		expect(before.stats).not.toHaveProperty('sharedMemory');
		await operations.setBalloon(128 * MIB);
		const after = await operations.balloonStats();
		expect(after.actualBytes).toBe(128 * MIB);
		expect(after.stats.freeMemory).toBe(before.stats.freeMemory! - 128 * MIB);
		// A suspended guest cannot report statistics; its balloon can still be set.
		await operations.suspend();
		await expect(operations.balloonStats()).rejects.toBeInstanceOf(VmStateError);
		await operations.setBalloon(0);
		await operations.resume();
		expect((await operations.balloonStats()).actualBytes).toBe(0);
		await expect(operations.setBalloon(-1)).rejects.toBeInstanceOf(InvalidConfigError);
		await expect(operations.setBalloon(1.5)).rejects.toBeInstanceOf(InvalidConfigError);
		await machine.stop();
		await expect(operations.setBalloon(0)).rejects.toBeInstanceOf(VmStateError);
		await expect(operations.suspend()).rejects.toBeInstanceOf(VmStateError);
	});

	test('a VM that failed to start refuses every operation with VmStateError', async () => {
		const machine = vm({kernel: '/nonexistent/kernel'});
		await expect(machine.start()).rejects.toBeInstanceOf(InvalidConfigError);
		const operations = vmOperations(machine);
		await expect(operations.suspend()).rejects.toBeInstanceOf(VmStateError);
		await expect(operations.resume()).rejects.toBeInstanceOf(VmStateError);
		await expect(operations.balloonStats()).rejects.toBeInstanceOf(VmStateError);
	});
});
