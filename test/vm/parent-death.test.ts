import {existsSync, readFileSync, rmSync, writeFileSync} from 'node:fs';
import path from 'node:path';
import {execa} from 'execa';
import winston from 'winston';
import {describe, expect, test} from '@jest/globals';
import {parentDeathCommand} from '../../src/services/vmm/process.js';
import {SIM_PATH, silentLogger, simulatorRunning, useVmFixture} from '../helpers/vm-fixture.js';

/** Whether a pid is a live process (a zombie counts as gone: it no longer runs). */
function alive(pid: number): boolean {
	try {
		const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
		return !/^\S+ \(.*\) [ZX] /.test(stat);
	} catch {
		return false;
	}
}

async function waitFor(check: () => boolean, timeoutMs: number): Promise<boolean> {
	const deadline = Date.now() + timeoutMs;
	while (!check()) {
		if (Date.now() > deadline) {
			return false;
		}

		await new Promise(resolve => {
			setTimeout(resolve, 20);
		});
	}

	return true;
}

describe('never leaving a VM behind', () => {
	const {context, guest} = useVmFixture();

	test('a host process killed with SIGKILL takes its VMM with it (checked through /proc)', async () => {
		const host = execa(process.execPath, ['--import', 'tsx', path.resolve('test/helpers/hosts/vm-host.ts'), SIM_PATH, guest('hang'), context.tempRoot], {reject: false, cleanup: false});
		const line = await new Promise<string>((resolve, reject) => {
			host.stdout.once('data', (chunk: Buffer) => {
				resolve(chunk.toString());
			});
			void host.then(result => {
				reject(new Error(`host ended early: ${result.stderr}`));
			});
		});
		const {pid, tempDir} = JSON.parse(line) as {pid: number; tempDir: string};
		expect(alive(pid)).toBe(true);
		await simulatorRunning(pid);
		host.kill('SIGKILL');
		await host;
		expect(await waitFor(() => !alive(pid), 5000)).toBe(true);
		// Nobody was left to clean up: the supervisor's stale-VM reaping handles such directories.
		expect(existsSync(tempDir)).toBe(true);
		rmSync(tempDir, {recursive: true, force: true});
	});

	test('without setpriv the VMM is spawned directly, and a warning is logged once', () => {
		const logger = silentLogger();
		const missing = path.join(context.scripts, 'no-setpriv');
		expect(parentDeathCommand('/bin/vmm', ['run', 'k'], logger, missing)).toEqual({file: '/bin/vmm', args: ['run', 'k'], parentDeathSignal: false});
		parentDeathCommand('/bin/vmm', [], logger, missing);
		expect(logger.lines.filter(entry => entry.level === 'warn')).toHaveLength(1);
		const present = path.join(context.scripts, 'setpriv');
		writeFileSync(present, '');
		expect(parentDeathCommand('/bin/vmm', ['run'], winston.createLogger({silent: true}), present)).toEqual({file: present, args: ['--pdeathsig', 'KILL', '--', '/bin/vmm', 'run'], parentDeathSignal: true});
	});
});
