import {closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import winston from 'winston';
import {afterEach, beforeAll, beforeEach, describe, expect, test} from '@jest/globals';
import {VmSpawnError} from '../../../src/errors.js';
import {spawnVmm, type SpawnVmmOptions} from '../../../src/services/vmm/process.js';
import {runCommand} from '../../../src/services/vmm/spawn/command.js';
import {settleLeaks, takeSnapshot, type ResourceSnapshot} from '../../helpers/leak-checker.js';
import {SIM_PATH} from '../../helpers/vm-fixture.js';
import {defaultVmmEnvironment} from '../../../src/services/vmm/vmm-environment.js';

const logger = winston.createLogger({silent: true});

/** Where each of a process's descriptors points, from /proc. */
function descriptorsOf(pid: number): Map<number, string> {
	return new Map(readdirSync(`/proc/${pid}/fd`).map(fd => [Number(fd), readlinkSync(`/proc/${pid}/fd/${fd}`)]));
}

describe('spawnVmm', () => {
	let work: string;
	let baseline: ResourceSnapshot;

	beforeAll(() => {
		if (!existsSync(SIM_PATH)) {
			throw new Error(`${SIM_PATH} is missing: run npm run build first`);
		}
	});

	beforeEach(() => {
		work = mkdtempSync(path.join(os.tmpdir(), 'vmw-process-'));
		baseline = takeSnapshot();
	});

	afterEach(async () => {
		const leaks = await settleLeaks(baseline, [], 5000);
		rmSync(work, {recursive: true, force: true});
		expect(leaks).toEqual([]);
	});

	/** A simulated VM: guest script `lines`, the failure channel at fd 3, the kernel at 4, the payload channel at 5. */
	function options(lines: string[], overrides: Partial<SpawnVmmOptions> = {}): SpawnVmmOptions & {disposals: () => number} {
		const kernel = path.join(work, 'guest');
		writeFileSync(kernel, ['#!crosvm-sim-guest', ...lines, ''].join('\n'));
		const kernelFd = openSync(kernel, 'r');
		let disposals = 0;
		return {
			vmmPath: SIM_PATH,
			args: ['--extended-status', 'run', '--disable-sandbox', '--serial', 'type=file,path=/proc/self/fd/3,hardware=serial,num=2', '--serial', 'type=file,path=/proc/self/fd/5,hardware=serial,num=3', '/proc/self/fd/4'],
			environment: defaultVmmEnvironment(),
			descriptors: ['pipe', kernelFd, 'pipe'],
			failureFd: 3,
			payloadFd: 5,
			logger,
			outputDir: work,
			disposals: () => disposals,
			onDispose() {
				if (disposals++ === 0) {
					closeSync(kernelFd);
				}
			},
			...overrides,
		};
	}

	test('the VMM gets stdio and its planned descriptors; the host keeps only the payload channel', async () => {
		// sleep as the VMM: it opens nothing of its own, so every descriptor it has was inherited.
		const spawnOptions = options([], {vmmPath: 'sleep', args: ['30']});
		const vmm = await spawnVmm(spawnOptions);
		// Past setpriv: the pid runs sleep once its cmdline says so.
		while (!readFileSync(`/proc/${vmm.pid}/cmdline`, 'utf8').split('\0')[0]!.endsWith('sleep')) {
			await new Promise(resolve => {
				setTimeout(resolve, 5);
			});
		}

		const child = descriptorsOf(vmm.pid);
		// Beyond 5 nothing, not even what the host inherited without close-on-exec (Node cannot mark it
		// there; the spawner process closes its copies).
		const host = takeSnapshot().descriptors;
		expect([...child.keys()].filter(fd => fd > 5)).toEqual([]);
		expect(child.get(0)).toBe('/dev/null');
		expect(child.get(1)).toBe('/dev/null');
		expect(child.get(2)).toBe(path.join(work, 'vmm.stderr'));
		expect(child.get(3)).toBe(path.join(work, 'vmm.failure'));
		expect(child.get(4)).toBe(path.join(work, 'guest'));
		expect(child.get(5)).toMatch(/^socket:/);
		// The descriptors vmwarden opened are released as soon as the VMM holds its copies.
		expect(spawnOptions.disposals()).toBe(1);
		expect([...host.values()].filter(target => target.startsWith(work))).toEqual([]);
		vmm.kill();
		await vmm.settled(200);
		vmm.dispose();
	});

	test('the failure text and the stderr tail are read back from their files, bounded', async () => {
		const vmm = await spawnVmm({...options(['fail-flood 200000', 'poweroff']), failureChannel: {maxBytes: 1000}});
		const failure = await vmm.settled(200);
		expect(failure).toEqual({text: 'x'.repeat(1000), truncated: true, dirRemoved: false});
		expect(vmm.stderrTail).toMatch(/exiting with success/);
		vmm.dispose();
	});

	test('an argv the kernel refuses (E2BIG) rejects with VmSpawnError and releases everything', async () => {
		const spawnOptions = options(['hang']);
		const huge = Array.from({length: 64}, () => 'x'.repeat(128 * 1024));
		const spawning = spawnVmm({...spawnOptions, args: huge});
		const error = await spawning.catch((caught: unknown) => caught);
		expect(error).toBeInstanceOf(VmSpawnError);
		expect(error).toMatchObject({code: 'VMM_SPAWN_FAILED'});
		expect((error as VmSpawnError).message).toMatch(/E2BIG/);
		expect(spawnOptions.disposals()).toBe(1);
	});

	/** Where the spawner makes the VM's directory, with its marker. */
	function newDir(name = 'vm-dir'): {path: string; markerName: string; markerText: string} {
		return {path: path.join(work, name), markerName: '.marker', markerText: 'the test\'s\n'};
	}

	test('the spawner makes the directory with the spawn (0700, with its marker) and, asked to, removes it once the outputs are read', async () => {
		const dir = newDir();
		const vmm = await spawnVmm({...options(['fail boom', 'sleep 300', 'poweroff']), outputDir: undefined, newOutputDir: dir, removeOutputDir: true});
		expect(statSync(dir.path).mode & 0o777).toBe(0o700);
		expect(readFileSync(path.join(dir.path, '.marker'), 'utf8')).toBe(dir.markerText);
		const failure = await vmm.settled(200);
		expect(failure).toEqual({text: 'boom', truncated: false, dirRemoved: true});
		expect(vmm.stderrTail).toMatch(/exiting with success/);
		// Gone when the answer came.
		expect(readdirSync(work)).toEqual(['guest']);
		vmm.dispose();
	});

	test('without being asked, the spawner leaves the directory it made to its owner', async () => {
		const dir = newDir();
		const vmm = await spawnVmm({...options(['poweroff']), outputDir: undefined, newOutputDir: dir});
		expect(await vmm.settled(200)).toEqual({text: '', truncated: false, dirRemoved: false});
		expect(readdirSync(dir.path).sort()).toEqual(['.marker', 'vmm.failure', 'vmm.stderr']);
		vmm.dispose();
	});

	test('a directory name that is taken is refused before anything is spawned, and what is there is left alone', async () => {
		const dir = newDir('taken');
		mkdirSync(dir.path);
		writeFileSync(path.join(dir.path, 'theirs'), 'not vmwarden\'s');
		const spawnOptions = options(['hang']);
		const error = await spawnVmm({...spawnOptions, outputDir: undefined, newOutputDir: dir, removeOutputDir: true}).catch((caught: unknown) => caught);
		expect(error).toBeInstanceOf(VmSpawnError);
		expect((error as VmSpawnError).cause).toMatchObject({code: 'EEXIST', inDir: true});
		expect(readdirSync(dir.path)).toEqual(['theirs']);
		expect(spawnOptions.disposals()).toBe(1);
	});

	test('a spawn that fails once its directory is made removes the directory again', async () => {
		const dir = newDir();
		const spawnOptions = options(['hang']);
		const huge = Array.from({length: 64}, () => 'x'.repeat(128 * 1024));
		const error = await spawnVmm({...spawnOptions, args: huge, outputDir: undefined, newOutputDir: dir}).catch((caught: unknown) => caught);
		expect(error).toMatchObject({code: 'VMM_SPAWN_FAILED'});
		expect((error as VmSpawnError).cause).toMatchObject({code: 'E2BIG', inDir: false});
		expect(existsSync(dir.path)).toBe(false);
		expect(spawnOptions.disposals()).toBe(1);
	});

	test('outputs the VMM replaced with links are read as empty, and removing the directory leaves what they point to', async () => {
		const secret = path.join(work, 'secret');
		writeFileSync(secret, 'not for the death record');
		const dir = newDir();
		const vmm = await spawnVmm({...options([], {vmmPath: 'sleep', args: ['30']}), outputDir: undefined, newOutputDir: dir, removeOutputDir: true});
		for (const output of ['vmm.failure', 'vmm.stderr']) {
			rmSync(path.join(dir.path, output));
			symlinkSync(secret, path.join(dir.path, output));
		}

		vmm.kill();
		expect(await vmm.settled(200)).toEqual({text: '', truncated: false, dirRemoved: true});
		expect(vmm.stderrTail).toBe('');
		expect(readdirSync(work).sort()).toEqual(['guest', 'secret']);
		expect(readFileSync(secret, 'utf8')).toBe('not for the death record');
		vmm.dispose();
	});

	test('a grandchild that keeps the payload channel open delays the outputs by the grace only', async () => {
		const dir = newDir();
		// sh writes its failure text, leaves a sleep holding every descriptor (the payload pipe at 5), and exits.
		const vmm = await spawnVmm({...options([], {vmmPath: 'sh', args: ['-c', 'printf late >&3; sleep 3 & exit 7']}), outputDir: undefined, newOutputDir: dir, removeOutputDir: true});
		const {exit} = await vmm.terminated;
		const exitedAt = Date.now();
		expect(exit).toEqual({exitCode: 7, signal: undefined});
		expect(await vmm.settled(100)).toEqual({text: 'late', truncated: false, dirRemoved: true});
		expect(Date.now() - exitedAt).toBeLessThan(2000);
		expect(existsSync(dir.path)).toBe(false);
		vmm.dispose();
	});

	test('the VMM gets its environment and nothing of the host environment', async () => {
		const dir = newDir();
		process.env['VMWARDEN_TEST_HOST_SECRET'] = 'not for the VMM';
		try {
			// The environment sh was exec'd with (setpriv passes it on as it is), one variable a line.
			const vmm = await spawnVmm({...options([], {vmmPath: 'sh', args: ['-c', 'tr "\\0" "\\n" < "/proc/$$/environ" >&3'], environment: {PATH: '/usr/bin:/bin', RUST_LOG: 'debug'}}), outputDir: undefined, newOutputDir: dir, removeOutputDir: true});
			await vmm.terminated;
			expect((await vmm.settled(100))?.text.split('\n').filter(Boolean).sort()).toEqual(['PATH=/usr/bin:/bin', 'RUST_LOG=debug']);
			vmm.dispose();
		} finally {
			delete process.env['VMWARDEN_TEST_HOST_SECRET'];
		}
	});

	test('a VMM that is not there rejects with VMM_NOT_FOUND before anything is spawned', async () => {
		const spawnOptions = options(['hang']);
		await expect(spawnVmm({...spawnOptions, vmmPath: path.join(work, 'no-vmm')})).rejects.toMatchObject({code: 'VMM_NOT_FOUND'});
		expect(spawnOptions.disposals()).toBe(1);
	});
});

describe('runCommand', () => {
	test('runs a short command from the spawner process and keeps the end of its stderr', async () => {
		const result = await runCommand(process.execPath, ['-e', 'process.stderr.write("x".repeat(9900) + "y".repeat(100)); process.exit(3)'], {environment: defaultVmmEnvironment(), timeoutMs: 10_000, maxOutputBytes: 100});
		expect(result).toMatchObject({code: 3, signal: null, stderr: 'y'.repeat(100), timedOut: false, failed: undefined});
	});

	test('ends a command that outlives its timeout', async () => {
		const result = await runCommand(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], {environment: defaultVmmEnvironment(), timeoutMs: 100});
		expect(result).toMatchObject({code: null, signal: 'SIGTERM', timedOut: true});
	});

	test('a command gets its environment and nothing of the host environment', async () => {
		process.env['VMWARDEN_TEST_HOST_SECRET'] = 'not for the command';
		try {
			const result = await runCommand('sh', ['-c', 'tr "\\0" "\\n" < "/proc/$$/environ" >&2'], {environment: {PATH: '/usr/bin:/bin', ONLY: 'this'}, timeoutMs: 10_000});
			expect(result.stderr.split('\n').filter(Boolean).sort()).toEqual(['ONLY=this', 'PATH=/usr/bin:/bin']);
		} finally {
			delete process.env['VMWARDEN_TEST_HOST_SECRET'];
		}
	});

	test('says why a command could not start', async () => {
		const result = await runCommand('/nonexistent/stop-client', ['stop'], {environment: defaultVmmEnvironment(), timeoutMs: 1000});
		expect(result.failed).toMatch(/ENOENT/);
	});
});
