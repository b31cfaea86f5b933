import {once} from 'node:events';
import {closeSync, constants, openSync, readFileSync, writeFileSync} from 'node:fs';
import {execa} from 'execa';
import {makeScratch, runSim, SIM} from '../helpers/sim-process.js';

const scratch = makeScratch();

afterAll(scratch.remove);

/**
 * execa's `stdio` with the VM's descriptors from 3 on. Its types allow only small numbers for an
 * inherited descriptor, but it hands any number to child_process as it is.
 */
function withDescriptors(...descriptors: Array<number | 'pipe'>): ['ignore', 'pipe', 'pipe', ...Array<'pipe'>] {
	return ['ignore', 'pipe', 'pipe', ...descriptors as Array<'pipe'>];
}

/** A FIFO: a real pipe, whose read end the test holds (non-blocking) and whose write end the VM gets. */
async function makeFifo(name: string): Promise<{readEnd: number; writeEnd: number}> {
	const path = scratch.path(name);
	await execa('mkfifo', [path]);
	const readEnd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
	const writeEnd = openSync(path, constants.O_WRONLY);
	return {readEnd, writeEnd};
}

test('console, kmsg, log, payload and failure output each reach their own descriptor', async () => {
	const consolePath = scratch.file('console.txt', 'from an earlier boot\n');
	const kmsgPath = scratch.path('kmsg.txt');
	const consoleFd = openSync(consolePath, 'a');
	const payload = await makeFifo('payload.fifo');
	const guest = scratch.guest(
		'all-outputs',
		'console first console line',
		'kmsg [    0.000000] kernel line',
		'log logcat line',
		'payload started',
		'payload ready',
		'payload finished 3',
		'payload error 2 could not open config',
		'fail MICRODROID_PAYLOAD_HAS_CHANGED|apk digest changed',
		'console second console line',
		'poweroff',
	);
	const result = await execa(SIM, [
		'run',
		'--serial', 'type=file,path=/proc/self/fd/3,hardware=serial,num=1',
		'--serial', 'type=file,path=/proc/self/fd/4,hardware=serial,num=2',
		'--serial', `type=file,path=${kmsgPath},hardware=virtio-console,num=1`,
		'--serial', 'type=sink,hardware=virtio-console,num=2',
		'--serial', 'type=file,path=/proc/self/fd/5,hardware=virtio-console,num=3',
		'--serial', 'type=file,path=/proc/self/fd/6,hardware=serial,num=3',
		guest,
	], {reject: false, stdio: withDescriptors(consoleFd, 'pipe', 'pipe', payload.writeEnd)});
	closeSync(consoleFd);
	closeSync(payload.writeEnd);
	const payloadText = readFileSync(payload.readEnd, 'utf8');
	closeSync(payload.readEnd);

	expect(result.exitCode).toBe(0);
	expect(readFileSync(consolePath, 'utf8')).toBe('from an earlier boot\nfirst console line\nsecond console line\n');
	expect(readFileSync(kmsgPath, 'utf8')).toBe('[    0.000000] kernel line\n');
	expect(result.stdio[4]).toBe('MICRODROID_PAYLOAD_HAS_CHANGED|apk digest changed');
	expect(result.stdio[5]).toBe('logcat line');
	expect(payloadText).toBe('VMW1 STARTED\nVMW1 READY\nVMW1 FINISHED 3\nVMW1 ERROR 2 could not open config\n');
	expect(result.stdout).toBe('');
});

test('without a payload UART the payload reports go nowhere and the guest carries on', async () => {
	const guest = scratch.guest('no-payload-device', 'payload started', 'console after', 'poweroff');
	const result = await runSim(['run', '--serial', 'type=stdout,num=1', guest]);
	expect(result.stdout).toBe('after');
	expect(result.exitCode).toBe(0);
});

test('a kernel, a disk and a serial output passed as inherited descriptors are used as such', async () => {
	const guestPath = scratch.guest('inherited-kernel', 'console from an inherited kernel', 'poweroff');
	const kernelFd = openSync(guestPath, 'r');
	const diskFd = openSync(scratch.file('disk.img', 'disk'), 'r+');
	const result = await execa(SIM, ['run', '--rwdisk', '/proc/self/fd/4', '--serial', 'type=file,path=/proc/self/fd/5', '/proc/self/fd/3'], {
		reject: false,
		stdio: withDescriptors(kernelFd, diskFd, 'pipe'),
	});
	closeSync(kernelFd);
	closeSync(diskFd);
	expect(result.stderr).not.toContain('ERROR');
	expect(result.stdio[5]).toBe('from an inherited kernel');
	expect(result.exitCode).toBe(0);
});

test('a guest script read from a stream descriptor (no size to go by) plays whole', async () => {
	const lines = Array.from({length: 2000}, (_, index) => `console line ${index}`);
	const result = await execa(SIM, ['--extended-status', 'run', '--serial', 'type=stdout', '/proc/self/fd/0'], {
		reject: false,
		input: ['#!crosvm-sim-guest', ...lines, 'reboot', ''].join('\n'),
	});
	expect(result.exitCode).toBe(32);
	expect(result.stdout.split('\n')).toEqual(lines.map(line => line.slice('console '.length)));
});

test('a kernel that is a directory fails the start', async () => {
	const result = await runSim(['run', scratch.dir]);
	expect(result.exitCode).toBe(1);
	expect(result.stderr).toContain(`failed to load kernel image ${scratch.dir}: Is a directory (os error 21)`);
});

test.each([6, 7, 9, 63])('a /proc/self/fd/%i that the VM did not inherit fails the start (exit 1)', async fd => {
	const guest = scratch.guest(`closed-fd-${fd}`, 'console should not run', 'poweroff');
	const result = await execa(SIM, ['run', '--serial', `type=file,path=/proc/self/fd/${fd},num=1`, guest], {
		reject: false,
		// Descriptors 3 to 5 are open in the child; the one named is not.
		stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe', 'pipe'],
	});
	expect(result.exitCode).toBe(1);
	expect(result.stderr).toContain(`exiting with error 1: failed to open serial serial num 1 /proc/self/fd/${fd}: Bad file descriptor (os error 9)`);
	expect(result.stdio[3]).toBe('');
});

test('type=file creates a missing file and appends', async () => {
	const path = scratch.path('created.txt');
	const guest = scratch.guest('created', 'console line', 'poweroff');
	await runSim(['run', '--serial', `type=file,path=${path}`, guest]);
	await runSim(['run', '--serial', `type=file,path=${path}`, guest]);
	expect(readFileSync(path, 'utf8')).toBe('line\nline\n');
});

test('fail-flood writes that many bytes to the failure UART', async () => {
	const guest = scratch.guest('flood', 'fail-flood 200000', 'poweroff');
	const result = await execa(SIM, ['run', '--serial', 'type=file,path=/proc/self/fd/3,num=2', guest], {reject: false, stdio: ['ignore', 'pipe', 'pipe', 'pipe']});
	expect(result.exitCode).toBe(0);
	expect(result.stdio[3]).toHaveLength(200_000);
	expect(result.stdio[3]).toMatch(/^x+$/);
});

test('spawn-holder keeps the failure UART open after the VMM exited', async () => {
	const guest = scratch.guest('holder', 'fail REASON', 'spawn-holder 3000', 'poweroff');
	const vm = execa(SIM, ['run', '--serial', 'type=file,path=/proc/self/fd/3,num=2', guest], {reject: false, stdio: ['ignore', 'pipe', 'pipe', 'pipe']});
	const failure = vm.stdio[3];
	let ended = false;
	failure.on('end', () => {
		ended = true;
	});
	await once(vm, 'exit');
	expect(vm.exitCode).toBe(0);
	expect(ended).toBe(false);
	const result = await vm;
	expect(ended).toBe(true);
	expect(result.stdio[3]).toBe('REASON');
});

test('a serial input file must open', async () => {
	writeFileSync(scratch.path('input.txt'), '');
	const guest = scratch.guest('input', 'poweroff');
	const good = await runSim(['run', '--serial', `type=sink,input=${scratch.path('input.txt')}`, guest]);
	const bad = await runSim(['run', '--serial', `type=sink,input=${scratch.path('no-input.txt')}`, guest]);
	expect(good.exitCode).toBe(0);
	expect(bad.exitCode).toBe(1);
	expect(bad.stderr).toContain('No such file or directory');
});
