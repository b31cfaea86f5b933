import {readFileSync} from 'node:fs';
import path from 'node:path';
import {expect, test} from '@jest/globals';
import {filter, firstValueFrom} from 'rxjs';
import {VmControlUnsupportedError} from '../../src/errors.js';
import {DeathReason} from '../../src/services/death/reason.js';
import {createQemuDriver} from '../../src/services/qemu/driver.js';
import {createVm, type VmOperations} from '../../src/vm.js';
import {silentLogger} from '../helpers/vm-fixture.js';
import {describeWhenReady, useE2eWorkspace} from '../helpers/e2e-environment.js';

const BOOT_TEST_TIMEOUT_MS = 120_000;

const {environment, describe} = describeWhenReady('QEMU operations');
const MIB = 1024 * 1024;

/** Polls `balloonStats()` until the balloon is `bytes` or 30 s passed; the last size seen. */
async function balloonReaches(vm: VmOperations, bytes: number): Promise<number> {
	const deadline = Date.now() + 30_000;
	let {actualBytes} = await vm.balloonStats();
	while (actualBytes !== bytes && Date.now() < deadline) {
		await new Promise(resolve => setTimeout(resolve, 200));
		({actualBytes} = await vm.balloonStats());
	}

	return actualBytes;
}

describe('a real Linux guest under QEMU (TCG): console capture, suspend and resume, the balloon', () => {
	const workspace = useE2eWorkspace();

	test('the console arrives line by line and byte for byte; suspend and resume through QMP; the balloon inflates and deflates; stop after', async () => {
		if (!environment.ready) {
			throw new Error('unreachable: the suite is skipped when the environment is not ready');
		}

		const {manifest} = environment;
		const consolePath = path.join(workspace.work, 'console.txt');
		const vm = createVm(
			{kernel: manifest.kernel, initrd: manifest.initrd, params: 'console=ttyS0 quiet vmwarden.scenario=serve', consoleOutput: consolePath, capture: {console: true}, balloon: true, memoryMib: 192},
			{cid: 150, driver: createQemuDriver({accelerators: ['tcg']}), crosvmPath: manifest.qemu, tempRoot: workspace.tempRoot, logger: silentLogger(), filePolicy: {createOutputs: true}, stopTimeoutMs: 30_000},
		);
		workspace.vms.push(vm);
		const lines: string[] = [];
		vm.console$.subscribe(line => lines.push(line));
		await vm.start();
		await firstValueFrom(vm.snapshots$.pipe(filter(snapshot => snapshot.context.payloadState === 'Ready')));
		await vm.suspend();
		expect(vm.execution).toBe('suspended');
		await vm.resume();
		expect(vm.execution).toBe('running');
		// QMP balloon and query-balloon: the guest's virtio_balloon driver inflates asynchronously.
		await expect(vm.balloonStats()).resolves.toEqual({actualBytes: 0, stats: {}});
		await vm.setBalloon(64 * MIB);
		expect(await balloonReaches(vm, 64 * MIB)).toBe(64 * MIB);
		await vm.setBalloon(0);
		expect(await balloonReaches(vm, 0)).toBe(0);
		const death = await vm.stop();
		expect(death).toMatchObject({reason: DeathReason.SHUTDOWN, payloadState: 'Finished', initiator: 'caller'});
		expect(lines).toContain('vmwarden-guest: serving until the power button');
		expect(lines).toContain('vmwarden-guest: power button');
		// The destination has the guest's bytes as written (the tty's \r\n included).
		const written = readFileSync(consolePath, 'utf8');
		expect(written.replaceAll('\r\n', '\n')).toBe(lines.map(line => `${line}\n`).join(''));
		expect(death?.consoleTail?.at(-1)).toBe(lines.at(-1));
	}, BOOT_TEST_TIMEOUT_MS);

	test('without balloon: true QEMU has no balloon device: both balloon operations are unsupported', async () => {
		if (!environment.ready) {
			throw new Error('unreachable: the suite is skipped when the environment is not ready');
		}

		const {manifest} = environment;
		const vm = createVm(
			{kernel: manifest.kernel, initrd: manifest.initrd, params: 'console=ttyS0 quiet vmwarden.scenario=serve'},
			{cid: 151, driver: createQemuDriver({accelerators: ['tcg']}), crosvmPath: manifest.qemu, tempRoot: workspace.tempRoot, logger: silentLogger(), filePolicy: {createOutputs: true}, stopTimeoutMs: 30_000},
		);
		workspace.vms.push(vm);
		await vm.start();
		await firstValueFrom(vm.snapshots$.pipe(filter(snapshot => snapshot.context.payloadState === 'Ready')));
		await expect(vm.setBalloon(MIB)).rejects.toBeInstanceOf(VmControlUnsupportedError);
		await expect(vm.balloonStats()).rejects.toBeInstanceOf(VmControlUnsupportedError);
	}, BOOT_TEST_TIMEOUT_MS);
});
