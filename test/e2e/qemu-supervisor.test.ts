import {writeFileSync} from 'node:fs';
import path from 'node:path';
import {expect, test} from '@jest/globals';
import {filter, firstValueFrom} from 'rxjs';
import {InvalidConfigError} from '../../src/errors.js';
import {DeathReason} from '../../src/services/death/reason.js';
import {createQemuDriver} from '../../src/services/qemu/driver.js';
import {createSupervisor} from '../../src/supervisor.js';
import {createVm} from '../../src/vm.js';
import {silentLogger} from '../helpers/vm-fixture.js';
import {describeWhenReady, useE2eWorkspace} from '../helpers/e2e-environment.js';

const BOOT_TEST_TIMEOUT_MS = 120_000;

const {environment, describe} = describeWhenReady('QEMU under the supervisor, and start failures');

describe('QEMU VMs under the supervisor, and QEMU start failures', () => {
	const workspace = useE2eWorkspace();

	const manifest = () => {
		if (!environment.ready) {
			throw new Error('unreachable: the suite is skipped when the environment is not ready');
		}

		return environment.manifest;
	};

	const driver = createQemuDriver({accelerators: ['tcg']});

	test('two guests booted side by side; shutdown() presses both power buttons: SHUTDOWN each, CIDs released', async () => {
		const {kernel, initrd, qemu} = manifest();
		const supervisor = createSupervisor({driver, crosvmPath: qemu, tempRoot: workspace.tempRoot, logger: silentLogger(), cidRange: {first: 3000, last: 3009}, stopTimeoutMs: 60_000, filePolicy: {createOutputs: true}});
		workspace.supervisors.push(supervisor);
		const guests = await Promise.all(['a', 'b'].map(async name => supervisor.createVm({kernel, initrd, params: 'console=ttyS0 quiet vmwarden.scenario=serve', consoleOutput: path.join(workspace.work, `${name}.console`)})));
		expect(guests.map(vm => vm.cid)).toEqual([3000, 3001]);
		await Promise.all(guests.map(async vm => vm.start()));
		await Promise.all(guests.map(async vm => firstValueFrom(vm.snapshots$.pipe(filter(snapshot => snapshot.context.payloadState === 'Ready')))));
		await supervisor.shutdown();
		const deaths = await Promise.all(guests.map(async vm => vm.died));
		expect(deaths.map(death => [death.cid, death.reason, death.payloadState])).toEqual([[3000, DeathReason.SHUTDOWN, 'Finished'], [3001, DeathReason.SHUTDOWN, 'Finished']]);
		expect(supervisor.vms()).toEqual([]);
	}, BOOT_TEST_TIMEOUT_MS);

	test('a kernel QEMU cannot load: ERROR with QEMU\'s stderr, promptly even under detectHangup', async () => {
		const {qemu} = manifest();
		const kernel = path.join(workspace.work, 'not-a-kernel');
		writeFileSync(kernel, 'not a kernel\n');
		const vm = createVm({kernel, detectHangup: true}, {cid: 40, driver, crosvmPath: qemu, tempRoot: workspace.tempRoot, logger: silentLogger(), bootHangupTimeoutMs: 60_000});
		workspace.vms.push(vm);
		const startedAt = Date.now();
		await vm.start();
		const death = await vm.died;
		expect(death).toMatchObject({reason: DeathReason.ERROR, exitCode: 1, payloadState: 'Starting'});
		expect(death.stderrTail).toContain('invalid kernel header');
		// The hang-up watch ends at the exit: far sooner than its 60 s.
		expect(Date.now() - startedAt).toBeLessThan(15_000);
	}, BOOT_TEST_TIMEOUT_MS);

	test('what QEMU cannot do fails start() with InvalidConfigError naming the field; nothing spawned', async () => {
		const {kernel, qemu} = manifest();
		const vm = createVm({kernel, protected: true}, {cid: 41, driver, crosvmPath: qemu, tempRoot: workspace.tempRoot, logger: silentLogger()});
		workspace.vms.push(vm);
		const started = vm.start();
		await expect(started).rejects.toBeInstanceOf(InvalidConfigError);
		await expect(started).rejects.toMatchObject({field: 'protected'});
		expect(vm.state).toBe('Failed');
		expect(vm.pid).toBeUndefined();
	}, BOOT_TEST_TIMEOUT_MS);
});
