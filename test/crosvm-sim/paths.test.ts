import {existsSync, readdirSync} from 'node:fs';
import {basename, isAbsolute} from 'node:path';
import {crosvmSimPath, EXAMPLE_GUESTS, exampleGuestPath, type ExampleGuest} from '../../src/crosvm-sim.js';
import {VmSpawnError} from '../../src/errors.js';
import {createVm} from '../../src/vm.js';

describe('vmwarden/crosvm-sim', () => {
	test('crosvmSimPath is the built simulator', () => {
		expect(isAbsolute(crosvmSimPath)).toBe(true);
		expect(crosvmSimPath.endsWith('/dist/crosvm-sim/cli.js')).toBe(true);
		expect(existsSync(crosvmSimPath)).toBe(true);
	});

	test('EXAMPLE_GUESTS names every guest in examples/guests, and exampleGuestPath finds each', () => {
		const shipped = readdirSync('examples/guests').filter(name => name.endsWith('.guest')).map(name => basename(name, '.guest'));
		expect([...EXAMPLE_GUESTS].sort()).toEqual(shipped.sort());
		for (const name of EXAMPLE_GUESTS) {
			expect(existsSync(exampleGuestPath(name))).toBe(true);
		}
	});

	test.each(['../../package.json', 'poweroff.guest', ''])('exampleGuestPath refuses %p, naming the guests there are', name => {
		expect(() => exampleGuestPath(name as ExampleGuest)).toThrow(`Invalid argument: name: is no example guest: one of ${EXAMPLE_GUESTS.join(', ')}`);
	});

	test('a missing crosvm points at the simulator; another missing VMM does not', () => {
		expect(new VmSpawnError('VMM_NOT_FOUND', 'crosvm', 'VMM crosvm not found on PATH').message)
			.toBe('VMM crosvm not found on PATH; to try vmwarden without crosvm, pass crosvmPath: crosvmSimPath from \'vmwarden/crosvm-sim\' (the bundled simulator)');
		expect(new VmSpawnError('VMM_NOT_FOUND', '/opt/bin/crosvm', 'VMM /opt/bin/crosvm does not exist').message).toMatch(/bundled simulator\)$/);
		expect(new VmSpawnError('VMM_NOT_FOUND', 'qemu-system-x86_64', 'VMM qemu-system-x86_64 not found on PATH').message).toBe('VMM qemu-system-x86_64 not found on PATH');
		expect(new VmSpawnError('VMM_NOT_EXECUTABLE', 'crosvm', 'VMM crosvm is not executable').message).toBe('VMM crosvm is not executable');
	});

	test('a VM whose crosvm is missing fails to start with the hint, and runs on the simulator', async () => {
		const missing = createVm({kernel: exampleGuestPath('poweroff')}, {cid: 2048, crosvmPath: '/nonexistent/crosvm'});
		await expect(missing.start()).rejects.toMatchObject({code: 'VMM_NOT_FOUND', message: expect.stringContaining('crosvmSimPath from \'vmwarden/crosvm-sim\'') as unknown});
		const simulated = createVm({kernel: exampleGuestPath('poweroff')}, {cid: 2049, crosvmPath: crosvmSimPath});
		await simulated.start();
		expect((await simulated.died).reason).toBe('SHUTDOWN');
	});
});
