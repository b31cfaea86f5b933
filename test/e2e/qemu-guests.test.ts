import {closeSync, openSync, readFileSync, writeFileSync} from 'node:fs';
import path from 'node:path';
import {expect, test} from '@jest/globals';
import {filter, firstValueFrom} from 'rxjs';
import {DeathReason} from '../../src/services/death/reason.js';
import type {PayloadState} from '../../src/services/payload/state.js';
import {createQemuDriver} from '../../src/services/qemu/driver.js';
import type {VmConfig} from '../../src/services/config/vm-config.js';
import {createVm, type CreateVmOptions, type Vm} from '../../src/vm.js';
import {silentLogger} from '../helpers/vm-fixture.js';
import {describeWhenReady, useE2eWorkspace} from '../helpers/e2e-environment.js';

// Boots take about 5 s each under software emulation on 2 cores; several in a test, one at a time.
const BOOT_TEST_TIMEOUT_MS = 120_000;

const {environment, describe} = describeWhenReady('QEMU guests');

describe('real Linux guests under QEMU (TCG), through createVm', () => {
	const workspace = useE2eWorkspace();

	const consolePath = () => path.join(workspace.work, 'console.txt');
	// The guest's tty writes \r\n.
	const consoleText = () => readFileSync(consolePath(), 'utf8').replaceAll('\r', '');

	/** A VM running the e2e guest's `scenario`, with the console in the test's directory. */
	function guest(scenario: string, config: Partial<VmConfig> = {}, options: Partial<CreateVmOptions> = {}): {vm: Vm; payloadStates: PayloadState[]} {
		if (!environment.ready) {
			throw new Error('unreachable: the suite is skipped when the environment is not ready');
		}

		const {manifest} = environment;
		const vm = createVm(
			{kernel: manifest.kernel, initrd: manifest.initrd, params: `console=ttyS0 quiet vmwarden.scenario=${scenario}`, consoleOutput: consolePath(), ...config},
			{cid: 100 + workspace.vms.length, driver: createQemuDriver({accelerators: ['tcg']}), crosvmPath: manifest.qemu, tempRoot: workspace.tempRoot, logger: silentLogger(), filePolicy: {createOutputs: true, allowHostDescriptors: true}, ...options},
		);
		workspace.vms.push(vm);
		const payloadStates: PayloadState[] = [];
		vm.events$.subscribe(event => {
			if (event.type === 'payload') {
				payloadStates.push(event.to);
			}
		});
		return {vm, payloadStates};
	}

	async function payloadReaches(vm: Vm, state: PayloadState): Promise<void> {
		await firstValueFrom(vm.snapshots$.pipe(filter(snapshot => snapshot.context.payloadState === state)));
	}

	test('a guest that reports its payload and powers off: SHUTDOWN, Started -> Ready -> Finished', async () => {
		const {vm, payloadStates} = guest('poweroff');
		await vm.start();
		expect(vm.state).toBe('Running');
		const death = await vm.died;
		expect(death).toMatchObject({reason: DeathReason.SHUTDOWN, exitCode: 0, signal: undefined, payloadState: 'Finished', failureReason: undefined, initiator: 'guest'});
		expect(payloadStates).toEqual(['Started', 'Ready', 'Finished']);
		expect(consoleText()).toContain('vmwarden-guest: scenario poweroff\n');
		expect(consoleText()).toContain('vmwarden-guest: payload done\n');
		expect(vm.state).toBe('Dead');
	}, BOOT_TEST_TIMEOUT_MS);

	test('a guest that reboots: REBOOT', async () => {
		const {vm, payloadStates} = guest('reboot');
		await vm.start();
		const death = await vm.died;
		expect(death).toMatchObject({reason: DeathReason.REBOOT, exitCode: 0, payloadState: 'Started'});
		expect(payloadStates).toEqual(['Started']);
		expect(consoleText()).toContain('vmwarden-guest: rebooting');
	}, BOOT_TEST_TIMEOUT_MS);

	test('a guest kernel panic: GUEST_PANIC (pvpanic)', async () => {
		const {vm} = guest('panic');
		await vm.start();
		const death = await vm.died;
		expect(death).toMatchObject({reason: DeathReason.GUEST_PANIC, exitCode: 0, payloadState: 'Started'});
		expect(consoleText()).toContain('Kernel panic');
	}, BOOT_TEST_TIMEOUT_MS);

	test('a failure reason written to /dev/ttyS1 becomes the death reason, with its context', async () => {
		const {vm} = guest('failure');
		await vm.start();
		const death = await vm.died;
		expect(death).toMatchObject({
			reason: DeathReason.MICRODROID_PAYLOAD_HAS_CHANGED,
			failureReason: 'MICRODROID_PAYLOAD_HAS_CHANGED',
			failureContext: 'the payload changed since boot',
			exitCode: 0,
			payloadState: 'Started',
		});
	}, BOOT_TEST_TIMEOUT_MS);

	test('disks (a path read-only, a caller\'s descriptor writable) and the log on hvc2', async () => {
		const readOnly = path.join(workspace.work, 'ro.img');
		const writable = path.join(workspace.work, 'rw.img');
		const log = path.join(workspace.work, 'log.txt');
		writeFileSync(readOnly, Buffer.concat([Buffer.from('vmwarden e2e disk\n'), Buffer.alloc(4096 - 18)]));
		writeFileSync(writable, Buffer.alloc(4096));
		const writableFd = openSync(writable, 'r+');
		workspace.cleanups.push(() => {
			closeSync(writableFd);
		});
		const {vm} = guest('devices', {disks: [{image: readOnly, writable: false}, {image: writableFd, writable: true}], logOutput: log});
		await vm.start();
		const death = await vm.died;
		expect(death).toMatchObject({reason: DeathReason.SHUTDOWN, payloadState: 'Finished'});
		expect(consoleText()).toContain('vmwarden-guest: disk vda: vmwarden e2e disk\n');
		expect(readFileSync(writable).subarray(0, 21).toString()).toBe('written by the guest\n');
		expect(readFileSync(log, 'utf8')).toContain('vmwarden-guest log line');
	}, BOOT_TEST_TIMEOUT_MS);

	test('a guest that hangs before Started, with detectHangup: HANGUP', async () => {
		const {vm, payloadStates} = guest('hang', {detectHangup: true}, {bootHangupTimeoutMs: 3000});
		await vm.start();
		const death = await vm.died;
		expect(death).toMatchObject({reason: DeathReason.HANGUP, signal: 'SIGKILL', payloadState: 'Starting'});
		expect(payloadStates).toEqual([]);
	}, BOOT_TEST_TIMEOUT_MS);

	test('stop() of a running guest presses its power button: SHUTDOWN, the payload finishes', async () => {
		const {vm, payloadStates} = guest('serve', {}, {stopTimeoutMs: 30_000});
		await vm.start();
		await payloadReaches(vm, 'Ready');
		const death = await vm.stop();
		expect(death).toMatchObject({reason: DeathReason.SHUTDOWN, exitCode: 0, signal: undefined, payloadState: 'Finished', initiator: 'caller'});
		expect(payloadStates).toEqual(['Started', 'Ready', 'Finished']);
		expect(consoleText()).toContain('vmwarden-guest: power button');
	}, BOOT_TEST_TIMEOUT_MS);

	test('stop() of a guest that ignores the power button kills it after the timeout: KILLED', async () => {
		const {vm} = guest('hang', {}, {stopTimeoutMs: 1500});
		await vm.start();
		const death = await vm.stop();
		expect(death).toMatchObject({reason: DeathReason.KILLED, signal: 'SIGKILL', initiator: 'caller'});
	}, BOOT_TEST_TIMEOUT_MS);

	test('SIGTERM from outside (QEMU exits 0, untraced): KILLED, not REBOOT', async () => {
		const {vm} = guest('serve');
		await vm.start();
		await payloadReaches(vm, 'Ready');
		process.kill(vm.pid!, 'SIGTERM');
		const death = await vm.died;
		expect(death).toMatchObject({reason: DeathReason.KILLED, exitCode: 0, signal: undefined, payloadState: 'Ready'});
		expect(death.stderrTail).toContain('terminating on signal 15');
	}, BOOT_TEST_TIMEOUT_MS);

	test('kill() of a running guest: KILLED', async () => {
		const {vm} = guest('serve');
		await vm.start();
		await payloadReaches(vm, 'Ready');
		vm.kill();
		const death = await vm.died;
		expect(death).toMatchObject({reason: DeathReason.KILLED, signal: 'SIGKILL', exitCode: undefined, payloadState: 'Ready', initiator: 'caller'});
	}, BOOT_TEST_TIMEOUT_MS);
});
