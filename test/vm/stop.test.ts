import {describe, expect, test} from '@jest/globals';
import {DeathReason} from '../../src/services/death/reason.js';
import {filter, firstValueFrom} from 'rxjs';
import type {Vm} from '../../src/vm.js';
import {useVmFixture} from '../helpers/vm-fixture.js';
import {type VmEvent} from '../../src/types.js';

async function payloadStarted(vm: Vm): Promise<void> {
	await firstValueFrom(vm.snapshots$.pipe(filter(snapshot => snapshot.context.payloadState !== 'Starting')));
}

describe('stop()', () => {
	const {guest, vm} = useVmFixture();

	test('asks the VMM to stop through its control socket: SHUTDOWN', async () => {
		const machine = vm({kernel: guest('payload started', 'hang')});
		await machine.start();
		const death = await machine.stop({timeoutMs: 5000});
		expect(death).toMatchObject({reason: DeathReason.SHUTDOWN, exitCode: 0, initiator: 'caller'});
		expect(machine.state).toBe('Dead');
	});

	test('a VMM that never answers is killed after the timeout: KILLED', async () => {
		const machine = vm({kernel: guest('ignore-stop', 'payload started', 'hang')});
		await machine.start();
		// The guest reports Started only once it ignores stop requests.
		await payloadStarted(machine);
		const startedAt = Date.now();
		const death = await machine.stop({timeoutMs: 400});
		expect(death).toMatchObject({reason: DeathReason.KILLED, signal: 'SIGKILL', initiator: 'caller'});
		expect(Date.now() - startedAt).toBeGreaterThanOrEqual(400);
	});

	test('concurrent stops share one stop', async () => {
		const machine = vm({kernel: guest('ignore-stop', 'payload started', 'hang')});
		const stopping: VmEvent[] = [];
		machine.events$.subscribe(event => {
			if (event.type === 'stopping') {
				stopping.push(event);
			}
		});
		await machine.start();
		await payloadStarted(machine);
		const [first, second, third] = await Promise.all([machine.stop({timeoutMs: 300}), machine.stop({timeoutMs: 60_000}), machine.stop()]);
		expect(first).toMatchObject({reason: DeathReason.KILLED});
		expect(second).toBe(first);
		expect(third).toBe(first);
		expect(stopping).toEqual([{type: 'stopping', cid: machine.cid, initiator: 'caller', timeoutMs: 300}]);
	});

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
