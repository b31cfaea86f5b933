import {existsSync, readFileSync, writeFileSync} from 'node:fs';
import {join} from 'node:path';
import {afterEach, beforeAll, beforeEach, describe, expect, test} from '@jest/globals';
import {PASSED_HOST_VARIABLES} from '../../src/services/vmm/vmm-environment.js';
import {cliScratch, alive, requireBuild, SIM, spawnVmwarden, vmwarden, waitForText, waitUntil, type CliScratch} from './cli-process.js';

let scratch: CliScratch;
beforeAll(requireBuild);
beforeEach(() => {
	scratch = cliScratch();
});
afterEach(() => {
	// Every VM's temporary directory was removed by the command itself.
	const leftovers = scratch.leftovers();
	scratch.remove();
	expect(leftovers).toEqual([]);
});

interface RunJson {
	cid: number;
	exitStatus: number;
	death: {reason: string; initiator: string; exitCode: number | null; signal: string | null; failureReason: string | null; payloadState: string};
}

async function runJson(config: string, ...options: string[]) {
	const result = await vmwarden(['run', config, '--vmm', SIM, '--json', ...options], scratch.env());
	return {result, json: JSON.parse(result.stdout) as RunJson};
}

describe('vmwarden run: the exit status follows the death', () => {
	test.each([
		['poweroff', ['poweroff'], 'SHUTDOWN', 0],
		['reboot', ['reboot'], 'REBOOT', 32],
		['crash', ['crash'], 'CRASH', 33],
		['panic', ['panic'], 'GUEST_PANIC', 34],
		['watchdog', ['watchdog'], 'WATCHDOG_REBOOT', 36],
		['an unknown exit status', ['exit 7'], 'UNKNOWN', 37],
		['a VMM that fails to start the VM', ['exit 1'], 'ERROR', 10],
		['a guest failure text', ['fail MICRODROID_PAYLOAD_VERIFICATION_FAILED|bad apk', 'poweroff'], 'MICRODROID_PAYLOAD_VERIFICATION_FAILED', 41],
		['a VMM killed by a signal vmwarden did not send', ['signal SIGSEGV'], 'KILLED', 137],
	])('%s', async (_what, script, reason, status) => {
		const {result, json} = await runJson(scratch.config('vm.json', {kernel: scratch.guest('guest', ...script)}));
		expect(json.death.reason).toBe(reason);
		expect(json.exitStatus).toBe(status);
		expect(result.exitCode).toBe(status);
	});

	test('a payload that never starts, with --detect-hangup: HANGUP, 40', async () => {
		const {result, json} = await runJson(scratch.config('vm.json', {kernel: scratch.guest('guest', 'hang')}), '--detect-hangup', '--boot-timeout', '200');
		expect(json.death).toMatchObject({reason: 'HANGUP', initiator: 'guest'});
		expect(result.exitCode).toBe(40);
	});

	test('for people: how the VM died on stderr, the guest console on stdout with --console', async () => {
		const result = await vmwarden(['run', scratch.config('vm.json', {kernel: scratch.guest('guest', 'console hello from the guest', 'fail MICRODROID_INVALID_PAYLOAD_CONFIG|\u001b[31mred', 'poweroff')}), '--vmm', SIM, '--console'], scratch.env());
		expect(result.exitCode).toBe(41);
		expect(result.stdout).toContain('hello from the guest');
		expect(result.stderr).toContain('VM 2048 died: MICRODROID_INVALID_PAYLOAD_CONFIG');
		// The guest's text cannot drive the terminal.
		expect(result.stderr).toContain('failure reason: MICRODROID_INVALID_PAYLOAD_CONFIG | \\u001b[31mred');
	});

	test('an Android vm_config.json, with --cid and --log', async () => {
		const log = join(scratch.dir, 'guest.log');
		const config = scratch.config('vm_config.json', {name: 'x', kernel: scratch.guest('guest', 'log payload: done', 'poweroff'), disks: [], memory_mib: 256, platform_version: '~1.0', task_profiles: []});
		const {result, json} = await runJson(config, '--cid', '4000', '--log', log);
		expect(result.exitCode).toBe(0);
		expect(json).toMatchObject({cid: 4000, death: {reason: 'SHUTDOWN'}});
		expect(readFileSync(log, 'utf8')).toContain('payload: done');
	});

	test('--dialect aosp-2022 speaks to a crosvm of mid-2022', async () => {
		const config = scratch.config('vm.json', {kernel: scratch.guest('guest', 'reboot'), taskProfiles: ['SCHED_SP_TOP_APP']});
		const result = await vmwarden(['run', config, '--vmm', SIM, '--dialect', 'aosp-2022', '--json'], {...scratch.env(), CROSVM_SIM_BUILD: 'aosp-2022'});
		expect(JSON.parse(result.stdout)).toMatchObject({death: {reason: 'REBOOT'}, exitStatus: 32});
	});

	test('the README\'s example: examples/configs/poweroff.json with --console, exit 0', async () => {
		const result = await vmwarden(['run', 'examples/configs/poweroff.json', '--vmm', SIM, '--console'], scratch.env());
		expect(result.exitCode).toBe(0);
		expect(result.stdout).toContain('Booting the guest');
		expect(result.stderr).toContain('VM 2048 died: SHUTDOWN (the VM shut down, VMM exit status 0; caused by the guest, payload Finished)');
	});

	test('a VMM that does not exist: 3, nothing left behind', async () => {
		const result = await vmwarden(['run', scratch.config('vm.json', {kernel: scratch.guest('guest', 'poweroff')}), '--vmm', join(scratch.dir, 'no-vmm')], scratch.env());
		expect(result.exitCode).toBe(3);
		expect(result.stderr).toContain('does not exist');
	});
});

describe('vmwarden run: a bad config exits 2 and starts nothing', () => {
	test.each([
		['not JSON', () => scratch.config('vm.json', '{"kernel":'), 'vm.json: is not JSON'],
		['no such file', () => join(scratch.dir, 'none.json'), 'none.json: cannot be opened: ENOENT'],
		['a field vmwarden does not know', () => scratch.config('vm.json', {kernel: scratch.guest('k', 'poweroff'), kernal: 'x'}), 'vm.json: kernal: is not a VmConfig field'],
		['a wrong type', () => scratch.config('vm.json', {kernel: scratch.guest('k', 'poweroff'), memoryMib: '1G'}), 'vm.json: memoryMib: must be a positive integer'],
		['no kernel', () => scratch.config('vm.json', {params: 'x'}), 'vm.json: kernel: VM must have either a bootloader or a kernel image.'],
		['a kernel that does not exist', () => scratch.config('vm.json', {kernel: 'missing-kernel'}), 'vm.json: kernel:'],
		['an Android disk made of partitions', () => scratch.config('vm_config.json', {kernel: scratch.guest('k', 'poweroff'), disks: [{partitions: [{label: 'a', path: '/x'}], writable: false}], platform_version: '~1.0'}), 'vm_config.json: disks[0].partitions: a composite disk assembled from partitions is not supported'],
		['an Android config without platform_version', () => scratch.config('vm_config.json', {kernel: scratch.guest('k', 'poweroff'), memory_mib: 64}), 'vm_config.json: platform_version: is missing'],
		['an Android field vmwarden cannot honour', () => scratch.config('vm_config.json', {kernel: scratch.guest('k', 'poweroff'), platform_version: '~1.0', cpu_topology: 'match_host'}), 'vm_config.json: cpu_topology: is not supported by vmwarden'],
	])('%s', async (_what, makeConfig, message) => {
		// This VMM leaves a mark if anything runs it.
		const mark = join(scratch.dir, 'vmm-ran');
		const vmm = scratch.config('vmm.sh', `#!/bin/sh\ntouch ${mark}\n`);
		const result = await vmwarden(['run', makeConfig(), '--vmm', vmm], scratch.env());
		expect(result.exitCode).toBe(2);
		expect(result.stderr).toContain(message);
		expect(existsSync(mark)).toBe(false);
	});

	test('with --json: the error as JSON on stdout', async () => {
		const result = await vmwarden(['run', scratch.config('vm.json', {kernel: 'k', memoryMib: 0}), '--json'], scratch.env());
		expect(result.exitCode).toBe(2);
		expect(JSON.parse(result.stdout)).toMatchObject({error: {code: 'INVALID_CONFIG', field: 'memoryMib', reason: 'must be a positive integer'}, exitStatus: 2});
	});

	test.each([
		['a CID below 3', ['--cid', '2'], 'must be an integer from 3'],
		['an accelerator QEMU does not have', ['--driver', 'qemu', '--accel', 'kvm,fast'], 'must be a comma-separated list of kvm, tcg, xen, hvf, whpx, each at most once'],
		['an accelerator twice', ['--driver', 'qemu', '--accel', 'tcg,tcg'], 'each at most once'],
	])('a bad option, %s: 2', async (_what, options, message) => {
		const result = await vmwarden(['run', 'x.json', ...options], scratch.env());
		expect(result.exitCode).toBe(2);
		expect(result.stderr).toContain(message);
	});
});

describe('vmwarden run: the VMM environment', () => {
	test('the VMM gets the default variables and each --vmm-env, not the rest of the caller environment', async () => {
		// A VMM that writes the environment it was exec'd with and powers off (exit 0).
		const out = join(scratch.dir, 'vmm.env');
		const vmm = join(scratch.dir, 'env-vmm');
		writeFileSync(vmm, `#!/bin/sh\ntr '\\0' '\\n' < "/proc/$$/environ" > '${out}'\nexit 0\n`, {mode: 0o755});
		const config = scratch.config('vm.json', {kernel: scratch.guest('guest', 'poweroff')});
		const result = await vmwarden(['run', config, '--vmm', vmm, '--json', '--vmm-env', 'RUST_LOG=debug', '--vmm-env', 'EXTRA=a=b'], {...scratch.env(), CALLER_SECRET: 'not for the VMM', NODE_OPTIONS: ''});
		expect(result.exitCode).toBe(0);
		const lines = readFileSync(out, 'utf8').split('\n').filter(Boolean);
		expect(lines).toEqual(expect.arrayContaining(['EXTRA=a=b', 'RUST_LOG=debug', 'CROSVM_SIM_BUILD=current', `TMPDIR=${scratch.tmp}`, `PATH=${process.env['PATH']}`]));
		const names = lines.map(line => line.slice(0, line.indexOf('=')));
		expect(names.filter(name => name !== 'EXTRA' && !PASSED_HOST_VARIABLES.includes(name) && !name.startsWith('CROSVM_') && !name.startsWith('QEMU_'))).toEqual([]);
	});

	test.each([['NAME', 'must be NAME=VALUE'], ['1BAD=x', 'is not a variable name'], ['toJSON=x', 'is a name vmwarden keeps for itself']])('--vmm-env %s is a usage error naming it, and nothing starts', async (argument, reason) => {
		const config = scratch.config('vm.json', {kernel: scratch.guest('guest', 'poweroff')});
		const result = await vmwarden(['run', config, '--vmm', SIM, '--vmm-env', argument], scratch.env());
		expect(result.exitCode).toBe(2);
		expect(result.stderr).toContain('--vmm-env');
		expect(result.stderr).toContain(reason);
	});
});

describe('vmwarden run: Ctrl-C', () => {
	async function started(guestLines: string[], ...options: string[]) {
		const run = spawnVmwarden(['run', scratch.config('vm.json', {kernel: scratch.guest('guest', ...guestLines)}), '--vmm', SIM, '--stop-timeout', '20000', ...options], scratch.env());
		const text = await waitForText(run.stderr, /started VM 2048 \(VMM pid (\d+)\)/);
		const pid = Number(/VMM pid (\d+)/.exec(text)?.[1]);
		return {run, pid};
	}

	test('once: the VM is stopped gracefully, and the command exits 130', async () => {
		const {run, pid} = await started(['payload started', 'hang']);
		run.kill('SIGINT');
		const result = await run;
		expect(result.exitCode).toBe(130);
		expect(result.stderr).toContain('stopping VM 2048 (Ctrl-C again to kill it)');
		expect(result.stderr).toContain('VM 2048 died: SHUTDOWN');
		expect(result.stderr).toContain('caused by the caller');
		expect(alive(pid)).toBe(false);
	});

	test('SIGHUP (the terminal closed) stops the VM as Ctrl-C does, and leaves nothing behind', async () => {
		const {run, pid} = await started(['payload started', 'hang']);
		run.kill('SIGHUP');
		const result = await run;
		expect(result.exitCode).toBe(130);
		expect(result.stderr).toContain('VM 2048 died: SHUTDOWN');
		expect(alive(pid)).toBe(false);
	});

	test('twice: a VM that ignores the stop is killed, and the command exits 130', async () => {
		const {run, pid} = await started(['ignore-stop', 'payload started', 'hang']);
		run.kill('SIGINT');
		await waitForText(run.stderr, /Ctrl-C again to kill it/);
		run.kill('SIGINT');
		const result = await run;
		expect(result.exitCode).toBe(130);
		expect(result.stderr).toContain('killing VM 2048');
		expect(result.stderr).toContain('VM 2048 died: KILLED');
		expect(await waitUntil(() => !alive(pid))).toBe(true);
	});
});
