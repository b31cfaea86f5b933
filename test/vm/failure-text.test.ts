import {describe, expect, test} from '@jest/globals';
import {DeathReason} from '../../src/services/death/reason.js';
import {useVmFixture, vmmExitSeen} from '../helpers/vm-fixture.js';

describe('the failure channel', () => {
	const {guest, vm} = useVmFixture();

	test('is capped at 50,000 bytes, and the VMM is never blocked writing more', async () => {
		const machine = vm({kernel: guest('fail-flood 200000', 'poweroff')});
		await machine.start();
		const death = await machine.died;
		expect(death.reason).toBe(DeathReason.SHUTDOWN);
		expect(death.failureReason).toHaveLength(50_000);
		expect(death.failureReason).toMatch(/^x+$/);
	});

	test('is finished promptly after the VMM exits although a grandchild still holds its write end', async () => {
		const machine = vm({kernel: guest('fail MICRODROID_UNKNOWN_RUNTIME_ERROR|held', 'spawn-holder 5000', 'crash')});
		const exitSeen = vmmExitSeen(machine);
		await machine.start();
		const death = await machine.died;
		expect(Date.now() - await exitSeen).toBeLessThan(1000);
		expect(death).toMatchObject({reason: DeathReason.MICRODROID_UNKNOWN_RUNTIME_ERROR, failureContext: 'held', exitCode: 33});
	});
});
