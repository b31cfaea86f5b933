import {readFileSync} from 'node:fs';
import {open} from 'node:fs/promises';
import path from 'node:path';
import {describe, expect, test} from '@jest/globals';
import {firstValueFrom, toArray} from 'rxjs';
import {DeathReason} from '../../src/services/death/reason.js';
import {CONSOLE_TAIL_LINES} from '../../src/services/console/lines.js';
import {vmOperations} from '../../src/vm.js';
import {useVmFixture} from '../helpers/vm-fixture.js';

describe('console capture', () => {
	const {context, guest, vm} = useVmFixture();

	test('lines arrive in order on console$ and byte for byte in the destination file', async () => {
		const output = path.join(context.scripts, 'console.txt');
		const lines = ['first line', 'second: ünïcödé', '', 'tabs\tand \u001B[1mescapes\u001B[0m', 'last'];
		const machine = vm({kernel: guest(...lines.map(line => `console ${line}`), 'poweroff'), consoleOutput: output, capture: {console: true}}, {filePolicy: {createOutputs: true}});
		const seen = firstValueFrom(vmOperations(machine).console$.pipe(toArray()));
		await machine.start();
		const death = await machine.died;
		expect(await seen).toEqual(lines);
		expect(readFileSync(output, 'utf8')).toBe(lines.map(line => `${line}\n`).join(''));
		expect(death.consoleTail).toEqual(lines);
	});

	test('the log too, into a caller\'s FileHandle, which stays the caller\'s', async () => {
		const output = path.join(context.scripts, 'log.txt');
		const handle = await open(output, 'a');
		try {
			const machine = vm({kernel: guest('log logcat says hi', 'console not the log', 'log bye', 'poweroff'), logOutput: handle, capture: {log: true}});
			const seen = firstValueFrom(vmOperations(machine).log$.pipe(toArray()));
			await machine.start();
			const death = await machine.died;
			expect(await seen).toEqual(['logcat says hi', 'bye']);
			expect(readFileSync(output, 'utf8')).toBe('logcat says hi\nbye\n');
			// Only the console has a tail in the death record.
			expect(death.consoleTail).toBeUndefined();
			// Still open: vmwarden never closes a caller's descriptor.
			await handle.appendFile('the caller writes on\n');
			expect(readFileSync(output, 'utf8')).toBe('logcat says hi\nbye\nthe caller writes on\n');
		} finally {
			await handle.close();
		}
	});

	test('a launch that fails after the capture was set up releases it (the fixture checks descriptors and directories) and completes console$', async () => {
		const output = path.join(context.scripts, 'never.txt');
		const machine = vm({kernel: guest('poweroff'), consoleOutput: output, capture: {console: true, log: true}}, {crosvmPath: path.join(context.scripts, 'no-such-crosvm'), filePolicy: {createOutputs: true}});
		const seen = firstValueFrom(vmOperations(machine).console$.pipe(toArray()));
		await expect(machine.start()).rejects.toMatchObject({code: 'VMM_NOT_FOUND'});
		await expect(seen).resolves.toEqual([]);
	});

	test('a crashing guest\'s last console lines are in its death record', async () => {
		const machine = vm({kernel: guest('console booting', 'console Kernel panic - not syncing: VFS', 'crash'), capture: {console: true}});
		await machine.start();
		const death = await machine.died;
		expect(death.reason).toBe(DeathReason.CRASH);
		expect(death.consoleTail).toEqual(['booting', 'Kernel panic - not syncing: VFS']);
	});

	test('a VM without capture has no console tail and an empty console$', async () => {
		const machine = vm({kernel: guest('console hello', 'poweroff')});
		const seen = firstValueFrom(vmOperations(machine).console$.pipe(toArray()));
		await machine.start();
		const death = await machine.died;
		expect(death.consoleTail).toBeUndefined();
		expect(await seen).toEqual([]);
	});

	test('a guest writing far more than the tail keeps the host\'s memory bounded, and the destination gets every byte', async () => {
		const output = path.join(context.scripts, 'flood.txt');
		const bytes = 64 * 1024 * 1024;
		const machine = vm({kernel: guest('console-flood 67108864', 'console the end', 'poweroff'), consoleOutput: output, capture: {console: true}}, {filePolicy: {createOutputs: true}});
		let count = 0;
		let previous = -1;
		let ordered = true;
		let peakRss = 0;
		const before = process.memoryUsage().rss;
		vmOperations(machine).console$.subscribe(line => {
			if (line.startsWith('flood ')) {
				const number = Number(line.slice(6, 16));
				ordered &&= number === previous + 1;
				previous = number;
			}

			count++;
			if (count % 65_536 === 0) {
				peakRss = Math.max(peakRss, process.memoryUsage().rss);
			}
		});
		await machine.start();
		const death = await machine.died;
		expect(death.reason).toBe(DeathReason.SHUTDOWN);
		expect(count).toBe(bytes / 64 + 1);
		expect(ordered).toBe(true);
		expect(death.consoleTail).toHaveLength(CONSOLE_TAIL_LINES);
		expect(death.consoleTail?.at(-1)).toBe('the end');
		// 64 MiB went through; the host holds a bounded buffer, not the output (generous for GC noise).
		expect(peakRss - before).toBeLessThan(32 * 1024 * 1024);
		const written = readFileSync(output);
		expect(written.length).toBe(bytes + 'the end\n'.length);
	}, 60_000);
});
