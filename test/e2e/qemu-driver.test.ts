import {spawnSync} from 'node:child_process';
import {closeSync, mkdirSync, mkdtempSync, openSync, rmSync, symlinkSync, writeFileSync} from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {afterAll, afterEach, beforeAll, describe, expect, test} from '@jest/globals';
import {InvalidConfigError, StopRequestError, QmpError} from '../../src/errors.js';
import {crosvmCommand} from '../../src/services/crosvm/command.js';
import {DeathReason} from '../../src/services/death/reason.js';
import {qemuCommand, type QemuCommandOptions} from '../../src/services/qemu/command.js';
import {createQemuDriver, lastShutdownCause, MAX_EVENT_LOG_BYTES, qemuExitReason} from '../../src/services/qemu/driver.js';
import {qmpExecute} from '../../src/services/qemu/qmp-client.js';
import type {VmConfig} from '../../src/services/config/vm-config.js';
import {defaultVmmEnvironment} from '../../src/services/vmm/vmm-environment.js';

let directory: string;
let kernel: string;
let disk: string;
const callerFds: number[] = [];

beforeAll(() => {
	directory = mkdtempSync(path.join(os.tmpdir(), 'vmwarden-qemu-driver-'));
	kernel = path.join(directory, 'vmlinuz');
	disk = path.join(directory, 'disk.img');
	writeFileSync(kernel, 'kernel');
	writeFileSync(disk, 'disk');
});

afterEach(() => {
	for (const fd of callerFds.splice(0)) {
		closeSync(fd);
	}
});

afterAll(() => {
	rmSync(directory, {recursive: true, force: true});
});

function options(overrides: Partial<QemuCommandOptions> = {}): QemuCommandOptions {
	return {cid: 12, qmpSocket: '/run/vm/qemu.sock', eventLog: '/run/vm/qemu-events.log', payloadChannel: true, accelerators: ['tcg'], ...overrides};
}

/** The value after each occurrence of `flag`. */
function values(args: string[], flag: string): string[] {
	return args.flatMap((argument, index) => (argument === flag ? [args[index + 1]!] : []));
}

/** What `attempt` throws (fails the test when it throws nothing). */
function thrownBy(attempt: () => unknown): unknown {
	try {
		attempt();
	} catch (error) {
		return error;
	}

	throw new Error('expected an error');
}

function callerFd(file: string, flags: string): number {
	const fd = openSync(file, flags);
	callerFds.push(fd);
	return fd;
}

describe('the QEMU command line', () => {
	const config: VmConfig = {
		kernel: '/k/vmlinuz',
		initrd: '/k/initrd',
		params: 'console=ttyS0 quiet',
		consoleOutput: '/logs/console',
		logOutput: '/logs/log',
		disks: [{image: '/d/ro.img', writable: false}, {image: '/d/rw.img', writable: true}],
		memoryMib: 512,
		cpus: 2,
	};

	test('uses the same descriptor plan as crosvm', () => {
		expect(qemuCommand(config, options()).fds).toEqual(crosvmCommand(config, {cid: 12, payloadChannel: true, target: {os: 'linux', arch: 'x86_64'}}).fds);
	});

	test('passes files vmwarden opens through fd sets, the failure channel too (spawnVmm makes it a file), the payload channel as a socket', () => {
		const {args, fds} = qemuCommand(config, options());
		const fd = (field: string) => fds.find(entry => entry.field === field)!.childFd;
		expect(values(args, '-add-fd')).toEqual([fd('consoleOutput'), fd('failure'), fd('logOutput'), fd('disks[0].image'), fd('disks[1].image')].map(n => `fd=${n},set=${n}`));
		expect(values(args, '-chardev')).toEqual(expect.arrayContaining([
			`file,id=vmw-console,path=/dev/fdset/${fd('consoleOutput')},append=on,mux=on`,
			`file,id=vmw-failure,path=/dev/fdset/${fd('failure')},append=on`,
			`socket,id=vmw-payload,fd=${fd('payload')}`,
			`file,id=vmw-log,path=/dev/fdset/${fd('logOutput')},append=on`,
		]));
		// ttyS0 console, ttyS1 failure, ttyS2 payload.
		expect(values(args, '-serial')).toEqual(['chardev:vmw-console', 'chardev:vmw-failure', 'chardev:vmw-payload']);
		expect(values(args, '-device')).toEqual(expect.arrayContaining(['virtconsole,chardev=vmw-console', 'virtconsole,chardev=vmw-hvc1', 'virtconsole,chardev=vmw-log', 'pvpanic']));
		expect(values(args, '-drive')).toEqual([
			`file=/dev/fdset/${fd('disks[0].image')},format=raw,if=virtio,readonly=on,auto-read-only=off`,
			`file=/dev/fdset/${fd('disks[1].image')},format=raw,if=virtio,readonly=off,auto-read-only=off`,
		]);
		expect(values(args, '-kernel')).toEqual([`/proc/self/fd/${fd('kernel')}`]);
		expect(values(args, '-initrd')).toEqual([`/proc/self/fd/${fd('initrd')}`]);
		expect(values(args, '-append')).toEqual(['console=ttyS0 quiet']);
		expect(values(args, '-m')).toEqual(['512']);
		expect(values(args, '-smp')).toEqual(['2']);
		expect(values(args, '-accel')).toEqual(['tcg']);
		expect(values(args, '-action')).toEqual(['reboot=shutdown,panic=shutdown']);
		expect(values(args, '-D')).toEqual(['/run/vm/qemu-events.log']);
	});

	test('without console, log or payload channel: null UART and sinks, two serial ports', () => {
		const {args} = qemuCommand({kernel: '/k/vmlinuz'}, options({payloadChannel: false}));
		expect(values(args, '-serial')).toEqual(['null', 'chardev:vmw-failure']);
		expect(values(args, '-chardev')).toEqual(expect.arrayContaining(['null,id=vmw-hvc0', 'null,id=vmw-hvc1', 'null,id=vmw-log']));
		expect(args).not.toContain('-append');
		expect(args).not.toContain('-m');
	});

	test('defaults to KVM with TCG as the fallback', () => {
		expect(values(qemuCommand({kernel: '/k/vmlinuz'}, options({accelerators: undefined})).args, '-accel')).toEqual(['kvm', 'tcg']);
	});

	test('doubles commas in the QMP socket path, keeps params as one argument', () => {
		const {args} = qemuCommand({kernel: '/k/vmlinuz', params: 'a=1,b=2 "c"'}, options({qmpSocket: '/tmp/a,b/qemu.sock'}));
		expect(values(args, '-chardev')).toContain('socket,id=vmw-qmp,path=/tmp/a,,b/qemu.sock,server=on,wait=off');
		expect(values(args, '-append')).toEqual(['a=1,b=2 "c"']);
	});

	test('a caller\'s write-only descriptor goes through an fd set; a read-write one is re-opened', () => {
		const writeOnly = callerFd(path.join(directory, 'console'), 'a');
		const readWrite = callerFd(path.join(directory, 'log'), 'a+');
		const {args, fds} = qemuCommand({kernel, consoleOutput: writeOnly, logOutput: readWrite}, options());
		const fd = (field: string) => fds.find(entry => entry.field === field)!.childFd;
		expect(values(args, '-chardev')).toEqual(expect.arrayContaining([
			`file,id=vmw-console,path=/dev/fdset/${fd('consoleOutput')},append=on,mux=on`,
			`file,id=vmw-log,path=/proc/self/fd/${fd('logOutput')},append=on`,
		]));
	});

	test('a read-only disk given as a read-write descriptor is re-opened read-only', () => {
		const image = callerFd(disk, 'r+');
		const {args, fds} = qemuCommand({kernel, disks: [{image, writable: false}]}, options());
		expect(values(args, '-drive')).toEqual([`file=/proc/self/fd/${fds.find(entry => entry.role === 'disk')!.childFd},format=raw,if=virtio,readonly=on,auto-read-only=off`]);
	});

	test('extraArgs come last, as given', () => {
		expect(qemuCommand({kernel: '/k/vmlinuz'}, options({extraArgs: ['-cpu', 'max']})).args.slice(-2)).toEqual(['-cpu', 'max']);
	});

	test.each([
		['protected', {protected: true}],
		['bootloader', {kernel: undefined, bootloader: '/k/bios'}],
		['taskProfiles', {taskProfiles: ['HighPerformance']}],
		['cpuAffinity', {cpuAffinity: '0-1'}],
	] as Array<[string, Partial<VmConfig>]>)('refuses %s, which QEMU cannot do, naming the field', (field, change) => {
		const error = thrownBy(() => qemuCommand({kernel: '/k/vmlinuz', ...change}, options()));
		expect(error).toBeInstanceOf(InvalidConfigError);
		expect(error).toMatchObject({field});
	});

	test.each([
		['accelerators', {accelerators: ['warp']}],
		['accelerators', {accelerators: []}],
		['extraArgs', {extraArgs: ['-x', 'a\0b']}],
		['tempRoot', {qmpSocket: `/${'x'.repeat(120)}/qemu.sock`}],
		['cid', {cid: 2}],
	] as const)('refuses a bad option: %s', (field, change) => {
		const error = thrownBy(() => qemuCommand({kernel: '/k/vmlinuz'}, options(change as Partial<QemuCommandOptions>)));
		expect(error).toBeInstanceOf(InvalidConfigError);
		expect(error).toMatchObject({field});
	});

	test('still refuses what every VM config refuses (no kernel)', () => {
		expect(thrownBy(() => qemuCommand({}, options()))).toMatchObject({field: 'kernel'});
	});
});

describe('QEMU exit reasons', () => {
	const trace = (reason: number) => `qemu_system_shutdown_request reason=${reason}\n`;

	test.each([
		[{exitCode: 0, signal: undefined}, trace(6), DeathReason.SHUTDOWN],
		[{exitCode: 0, signal: undefined}, trace(8), DeathReason.GUEST_PANIC],
		[{exitCode: 0, signal: undefined}, trace(7), DeathReason.REBOOT],
		[{exitCode: 0, signal: undefined}, '', DeathReason.REBOOT],
		[{exitCode: 0, signal: undefined}, trace(2), DeathReason.SHUTDOWN],
		[{exitCode: 0, signal: undefined}, trace(4), DeathReason.KILLED],
		[{exitCode: 0, signal: undefined}, trace(1), DeathReason.CRASH],
		[{exitCode: 0, signal: undefined}, trace(10), DeathReason.UNKNOWN],
		[{exitCode: 1, signal: undefined}, '', DeathReason.ERROR],
		[{exitCode: 3, signal: undefined}, '', DeathReason.UNKNOWN],
		[{exitCode: undefined, signal: 'SIGKILL'}, '', DeathReason.KILLED],
		[{exitCode: undefined, signal: 'SIGTERM'}, '', DeathReason.KILLED],
		[{exitCode: undefined, signal: 'SIGSEGV'}, '', DeathReason.CRASH],
		[{exitCode: undefined, signal: 'SIGABRT'}, '', DeathReason.CRASH],
	] as const)('%j with log %j gives %s', (exit, log, reason) => {
		expect(qemuExitReason(exit, log)).toBe(reason);
	});

	test('exit 0 without a traced cause is KILLED when QEMU\'s stderr says a signal ended it', () => {
		const stderr = 'qemu-system-x86_64: terminating on signal 15 from pid 4242 (node)\n';
		expect(qemuExitReason({exitCode: 0, signal: undefined}, '', stderr)).toBe(DeathReason.KILLED);
		// A traced cause still wins: the guest had already powered off.
		expect(qemuExitReason({exitCode: 0, signal: undefined}, trace(6), stderr)).toBe(DeathReason.SHUTDOWN);
	});

	test('the last traced cause wins, whatever else the log holds', () => {
		expect(lastShutdownCause(`12@1.5:qemu_system_shutdown_request reason=8\nnoise\n${trace(6)}`)).toBe(6);
		expect(lastShutdownCause('noise only')).toBeUndefined();
	});

	test('the driver reads the event log from the temporary directory (absent: no cause)', async () => {
		const driver = createQemuDriver();
		const tempDir = mkdtempSync(path.join(directory, 'vm-'));
		await expect(driver.exitReason({exitCode: 0, signal: undefined}, {tempDir})).resolves.toBe(DeathReason.REBOOT);
		writeFileSync(path.join(tempDir, 'qemu-events.log'), trace(8));
		await expect(driver.exitReason({exitCode: 0, signal: undefined}, {tempDir})).resolves.toBe(DeathReason.GUEST_PANIC);
		rmSync(path.join(tempDir, 'qemu-events.log'));
		await expect(driver.exitReason({exitCode: 0, signal: undefined}, {tempDir, stderrTail: 'terminating on signal 2'})).resolves.toBe(DeathReason.KILLED);
	});

	test('an event log that is a link, or too big to be QEMU\'s, gives no traced cause', async () => {
		const driver = createQemuDriver();
		const tempDir = mkdtempSync(path.join(directory, 'vm-'));
		const elsewhere = path.join(directory, 'planted-events.log');
		writeFileSync(elsewhere, trace(8));
		symlinkSync(elsewhere, path.join(tempDir, 'qemu-events.log'));
		await expect(driver.exitReason({exitCode: 0, signal: undefined}, {tempDir})).resolves.toBe(DeathReason.REBOOT);
		rmSync(path.join(tempDir, 'qemu-events.log'));
		writeFileSync(path.join(tempDir, 'qemu-events.log'), `${'x'.repeat(MAX_EVENT_LOG_BYTES)}\n${trace(8)}`);
		await expect(driver.exitReason({exitCode: 0, signal: undefined}, {tempDir})).resolves.toBe(DeathReason.REBOOT);
	});
});

/** A QMP server that greets, answers each command with `answer`, and records the commands. */
async function fakeQmp(socketPath: string, answer: (execute: string) => string | undefined): Promise<{server: net.Server; commands: string[]}> {
	const commands: string[] = [];
	const server = net.createServer(socket => {
		socket.write('{"QMP": {"version": {}, "capabilities": ["oob"]}}\r\n');
		let pending = '';
		socket.on('data', chunk => {
			const lines = (pending + chunk.toString()).split('\n');
			pending = lines.pop()!;
			for (const line of lines) {
				const {execute} = JSON.parse(line) as {execute: string};
				commands.push(execute);
				const reply = answer(execute);
				if (reply !== undefined) {
					// An event first: the client must skip it.
					socket.write(`{"event": "POWERDOWN", "timestamp": {}}\r\n${reply}\r\n`);
				}
			}
		});
		socket.on('error', () => undefined);
	});
	await new Promise<void>(resolve => {
		server.listen(socketPath, resolve);
	});
	return {server, commands};
}

async function close(server: net.Server): Promise<void> {
	await new Promise(resolve => {
		server.close(resolve);
	});
}

describe('graceful stop over QMP', () => {
	test('negotiates capabilities, then sends system_powerdown', async () => {
		const socketPath = path.join(directory, 'ok.sock');
		const {server, commands} = await fakeQmp(socketPath, () => '{"return": {}}');
		try {
			await createQemuDriver().requestStop({vmmPath: 'qemu-system-x86_64', environment: defaultVmmEnvironment(), tempDir: directory, pid: 1, controlSocket: socketPath});
			expect(commands).toEqual(['qmp_capabilities', 'system_powerdown']);
		} finally {
			await close(server);
		}
	});

	test('an error reply rejects with QmpError', async () => {
		const socketPath = path.join(directory, 'error.sock');
		const {server} = await fakeQmp(socketPath, execute => (execute === 'system_powerdown' ? '{"error": {"class": "GenericError", "desc": "no ACPI"}}' : '{"return": {}}'));
		try {
			await expect(qmpExecute(socketPath, 'system_powerdown', 2000)).rejects.toThrow(/GenericError: no ACPI/);
		} finally {
			await close(server);
		}
	});

	test('no answer: QmpError after the timeout', async () => {
		const socketPath = path.join(directory, 'silent.sock');
		const {server} = await fakeQmp(socketPath, () => undefined);
		try {
			await expect(qmpExecute(socketPath, 'system_powerdown', 300)).rejects.toThrow(QmpError);
		} finally {
			await close(server);
		}
	});

	test('no socket: the driver rejects with StopRequestError', async () => {
		const attempt = createQemuDriver({stopRequestTimeoutMs: 200}).requestStop({vmmPath: 'qemu-system-x86_64', environment: defaultVmmEnvironment(), tempDir: directory, pid: 1, controlSocket: path.join(directory, 'missing.sock')});
		await expect(attempt).rejects.toThrow(StopRequestError);
		await expect(attempt).rejects.toThrow(/ENOENT/);
	});
});

describe('the end-to-end setup', () => {
	test('on a machine without apt-get it exits 3 and says why, so the tests skip with that message', () => {
		const emptyPath = path.join(directory, 'empty-path');
		mkdirSync(emptyPath);
		const result = spawnSync('/bin/bash', [path.resolve('scripts/e2e/setup.sh')], {encoding: 'utf8', env: {PATH: emptyPath}});
		expect(result.status).toBe(3);
		expect(result.stderr).toMatch(/apt-get and dpkg-deb not found: not a Debian system.*qemu-system-x86/);
		expect(result.stdout).toBe('');
	});
});
