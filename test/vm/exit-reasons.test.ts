import {writeFileSync} from 'node:fs';
import {describe, expect, test} from '@jest/globals';
import {DeathReason, FAILURE_TEXT_REASONS} from '../../src/services/death/reason.js';
import {useVmFixture} from '../helpers/vm-fixture.js';

describe('each exit path gives its reason', () => {
	const {guest, vm} = useVmFixture();

	test.each([
		['poweroff', DeathReason.SHUTDOWN, 0],
		['reboot', DeathReason.REBOOT, 32],
		['crash', DeathReason.CRASH, 33],
		['panic', DeathReason.GUEST_PANIC, 34],
		['watchdog', DeathReason.WATCHDOG_REBOOT, 36],
		['exit 1', DeathReason.ERROR, 1],
		['exit 7', DeathReason.UNKNOWN, 7],
	] as const)('%s gives %s', async (action, reason, exitCode) => {
		const machine = vm({kernel: guest('payload started', action)});
		await machine.start();
		const death = await machine.died;
		expect(death).toMatchObject({cid: machine.cid, reason, exitCode, signal: undefined, failureReason: undefined, payloadState: 'Started'});
	});

	test('a VMM start error (a kernel that is no guest script) exits 1: ERROR, with the stderr tail', async () => {
		const kernel = guest();
		writeFileSync(kernel, 'not a guest script\n');
		const machine = vm({kernel});
		await machine.start();
		const death = await machine.died;
		expect(death).toMatchObject({reason: DeathReason.ERROR, exitCode: 1, payloadState: 'Starting', initiator: 'vmm'});
		expect(death.stderrTail.length).toBeGreaterThan(0);
	});

	test.each([['signal SIGTERM', 'SIGTERM'], ['signal SIGSEGV', 'SIGSEGV'], ['abort', 'SIGABRT']] as const)('%s gives KILLED', async (action, signal) => {
		const machine = vm({kernel: guest(action)});
		await machine.start();
		await expect(machine.died).resolves.toMatchObject({reason: DeathReason.KILLED, exitCode: undefined, signal, initiator: 'vmm'});
	});

	test('kill() gives KILLED by SIGKILL, initiated by the caller', async () => {
		const machine = vm({kernel: guest('payload started', 'hang')});
		await machine.start();
		machine.kill();
		await expect(machine.died).resolves.toMatchObject({reason: DeathReason.KILLED, signal: 'SIGKILL', initiator: 'caller'});
	});

	describe('a known failure text names the reason, with and without context', () => {
		test.each([...FAILURE_TEXT_REASONS])('%s', async reason => {
			const bare = vm({kernel: guest(`fail ${reason}`, 'crash')});
			const withContext = vm({kernel: guest(`fail ${reason}|bad digest | sha256`, 'poweroff')});
			await Promise.all([bare.start(), withContext.start()]);
			await expect(bare.died).resolves.toMatchObject({reason, failureReason: reason, failureContext: undefined, exitCode: 33, initiator: 'guest'});
			await expect(withContext.died).resolves.toMatchObject({reason, failureReason: reason, failureContext: 'bad digest | sha256', exitCode: 0});
		});
	});

	test('an unknown failure text is kept, and the exit decides', async () => {
		const machine = vm({kernel: guest('fail NOT_A_REASON|why', 'reboot')});
		await machine.start();
		await expect(machine.died).resolves.toMatchObject({reason: DeathReason.REBOOT, failureReason: 'NOT_A_REASON', failureContext: 'why'});
	});

	// The boot hang-up watch's timing (fires at the deadline, not after Started, not without
	// detectHangup, not after an early exit, a failure text winning over it) is the chart's business:
	// test/machines/vm.machine.test.ts runs it on a simulated clock. A real VM killed by it is a path of
	// test/machines/vm.model.test.ts.
});
