import {describe, expect, test} from '@jest/globals';
import {DeathReason} from '../../src/services/death/reason.js';
import {useVmFixture} from '../helpers/vm-fixture.js';

describe('stop()', () => {
	const {guest, vm} = useVmFixture();

	test('asks the VMM to stop through its control socket: SHUTDOWN', async () => {
		const machine = vm({kernel: guest('payload started', 'hang')});
		await machine.start();
		const death = await machine.stop({timeoutMs: 5000});
		expect(death).toMatchObject({reason: DeathReason.SHUTDOWN, exitCode: 0, initiator: 'caller'});
		expect(machine.state).toBe('Dead');
	});

	// A VMM that ignores the request and is killed at the timeout, and concurrent stops sharing one,
	// are timing paths of the chart: test/machines/vm.machine.test.ts. A real VM ignoring a stop is a
	// path of test/machines/vm.model.test.ts.

	test('stop() on a dead VM resolves at once with its death; on one that never ran, with nothing', async () => {
		const machine = vm({kernel: guest('crash')});
		expect(await machine.stop()).toBeUndefined();
		await machine.start();
		const death = await machine.died;
		await expect(machine.stop({timeoutMs: 60_000})).resolves.toBe(death);
		expect(death.reason).toBe(DeathReason.CRASH);
	});

	test('a stop asked for while starting is carried out once running', async () => {
		const machine = vm({kernel: guest('payload started', 'hang')});
		const starting = machine.start();
		const stopping = machine.stop({timeoutMs: 5000});
		await starting;
		await expect(stopping).resolves.toMatchObject({reason: DeathReason.SHUTDOWN});
	});
});
