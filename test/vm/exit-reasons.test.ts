import {writeFileSync} from 'node:fs';
import {describe, expect, test} from '@jest/globals';
import {DeathReason, FAILURE_TEXT_REASONS} from '../../src/services/death/reason.js';
import {useVmFixture, vmmExitSeen} from '../helpers/vm-fixture.js';

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

	test('HANGUP when the payload does not start within the boot timeout', async () => {
		const machine = vm({kernel: guest('hang'), detectHangup: true}, {bootHangupTimeoutMs: 300});
		const hangups: number[] = [];
		machine.events$.subscribe(event => {
			if (event.type === 'hangup') {
				hangups.push(event.timeoutMs);
			}
		});
		await machine.start();
		await expect(machine.died).resolves.toMatchObject({reason: DeathReason.HANGUP, signal: 'SIGKILL', payloadState: 'Starting', initiator: 'guest'});
		expect(hangups).toEqual([300]);
	});

	test('no hang-up once the payload started, nor without detectHangup', async () => {
		const started = vm({kernel: guest('sleep 600', 'poweroff'), detectHangup: true}, {bootHangupTimeoutMs: 200});
		const undetected = vm({kernel: guest('sleep 600', 'poweroff')}, {bootHangupTimeoutMs: 200});
		await Promise.all([started.start(), undetected.start()]);
		// Reported at once (the watch began when the VM started running, 200 ms cannot have passed).
		started.updatePayloadState('Started');
		await expect(started.died).resolves.toMatchObject({reason: DeathReason.SHUTDOWN, payloadState: 'Started'});
		await expect(undetected.died).resolves.toMatchObject({reason: DeathReason.SHUTDOWN, payloadState: 'Starting'});
	});

	test('a failure text wins over the hang-up', async () => {
		// Long enough for a busy host to start the simulator and write the text before the deadline.
		const machine = vm({kernel: guest('fail MICRODROID_FAILED_TO_CONNECT_TO_VIRTUALIZATION_SERVICE', 'hang'), detectHangup: true}, {bootHangupTimeoutMs: 2000});
		await machine.start();
		await expect(machine.died).resolves.toMatchObject({reason: DeathReason.MICRODROID_FAILED_TO_CONNECT_TO_VIRTUALIZATION_SERVICE, signal: 'SIGKILL'});
	});

	test('an early crash under detectHangup is CRASH, reported within a second although the timeout is 10 s', async () => {
		const machine = vm({kernel: guest('sleep 100', 'crash'), detectHangup: true}, {bootHangupTimeoutMs: 10_000});
		const hangups: unknown[] = [];
		machine.events$.subscribe(event => {
			if (event.type === 'hangup') {
				hangups.push(event);
			}
		});
		const exitSeen = vmmExitSeen(machine);
		await machine.start();
		const death = await machine.died;
		const diedAt = Date.now();
		expect(death).toMatchObject({reason: DeathReason.CRASH, exitCode: 33, payloadState: 'Starting'});
		expect(diedAt - await exitSeen).toBeLessThan(1000);
		expect(hangups).toEqual([]);
	});
});
