import {readFileSync, writeFileSync} from 'node:fs';
import path from 'node:path';
import {beforeAll, expect, test} from '@jest/globals';
import {execa, execaSync} from 'execa';
import {alive, requireBuild, VMWARDEN, waitForText, waitUntil} from '../cli/cli-process.js';
import {describeWhenReady, useE2eWorkspace, type E2eManifest} from '../helpers/e2e-environment.js';

// A boot takes 6 to 10 s under software emulation on 2 cores; a stop, a few more.
const BOOT_TEST_TIMEOUT_MS = 180_000;
const BOOT_MS = 90_000;

const {environment, describe} = describeWhenReady('the vmwarden command on QEMU');

function manifest(): E2eManifest {
	if (!environment.ready) {
		throw new Error('unreachable: the suite is skipped when the environment is not ready');
	}

	return environment.manifest;
}

/** A config file for the e2e guest's `serve` scenario: up until its power button is pressed. */
function serveConfig(work: string): string {
	const {kernel, initrd} = manifest();
	const file = path.join(work, 'vm.json');
	writeFileSync(file, JSON.stringify({kernel, initrd, params: 'console=ttyS0 quiet vmwarden.scenario=serve', memoryMib: 256}));
	return file;
}

/** The fields of /proc/PID/stat after the command's parentheses: state is [0], the process group [2], the session [3]. */
function statFields(pid: number): string[] {
	const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
	return stat.slice(stat.lastIndexOf(')') + 2).trim().split(' ');
}

/**
 * How a process that ended was ended, as waitpid(2) reports it: `status N` or `signal N`. Read
 * from its zombie (the last field of /proc/PID/stat, Linux 3.5 and later) while nobody has reaped it.
 */
function zombieEnd(pid: number): string | undefined {
	let fields: string[];
	try {
		fields = statFields(pid);
	} catch {
		return undefined;
	}

	if (fields[0] !== 'Z') {
		return undefined;
	}

	const wait = Number(fields.at(-1));
	return (wait & 0x7F) === 0 ? `status ${(wait >> 8) & 0xFF}` : `signal ${wait & 0x7F}`;
}

beforeAll(requireBuild);

describe('vmwarden run of a Debian kernel on QEMU, in a real terminal (tmux)', () => {
	const workspace = useE2eWorkspace();

	test('the console shows in the terminal; Ctrl-C stops the VM, the death is printed, exit 130', async () => {
		const {qemu} = manifest();
		const config = serveConfig(workspace.work);
		// A private tmux server whose socket is in the test's directory; panes stay once their command
		// ended, so that its exit status can be read.
		const tmuxConfig = path.join(workspace.work, 'tmux.conf');
		writeFileSync(tmuxConfig, 'set-option -g remain-on-exit on\n');
		const tmuxSocket = path.join(workspace.work, 'tmux.sock');
		const tmux = async (...args: string[]) => (await execa('tmux', ['-S', tmuxSocket, '-f', tmuxConfig, ...args], {env: {TMPDIR: workspace.tempRoot}, timeout: 10_000})).stdout;
		workspace.cleanups.push(() => {
			execaSync('tmux', ['-S', tmuxSocket, 'kill-server'], {reject: false});
		});
		// The command as argv: tmux executes it without a shell.
		await tmux('new-session', '-d', '-s', 'vm', '-x', '250', '-y', '50', '-e', `TMPDIR=${workspace.tempRoot}`, '--', process.execPath, VMWARDEN, 'run', config, '--driver', 'qemu', '--accel', 'tcg', '--vmm', qemu, '--console', '--cid', '3100', '--stop-timeout', '60000');
		const screen = async () => tmux('capture-pane', '-p', '-J', '-t', 'vm');

		expect(await waitUntil(async () => (await screen()).includes('vmwarden-guest: serving until the power button'), BOOT_MS)).toBe(true);
		const booted = await screen();
		expect(booted).toMatch(/^vmwarden: started VM 3100 \(VMM pid \d+\); Ctrl-C stops it$/m);
		expect(booted).toContain('vmwarden-guest: scenario serve');
		const vmmPid = Number(/VMM pid (\d+)/.exec(booted)?.[1]);
		const vmwardenPid = Number(await tmux('display-message', '-p', '-t', 'vm', '#{pane_pid}'));
		// The terminal's Ctrl-C reaches its foreground process group, vmwarden's own: the VMM leads a
		// session (and a process group) of its own, so only vmwarden's graceful stop reaches it.
		expect({vmmGroup: statFields(vmmPid)[2], vmmSession: statFields(vmmPid)[3]}).toEqual({vmmGroup: String(vmmPid), vmmSession: String(vmmPid)});
		expect(statFields(vmwardenPid)[2]).not.toBe(String(vmmPid));

		await tmux('send-keys', '-t', 'vm', 'C-c');
		// How vmwarden ended: from tmux once it reaped it. tmux marks the pane dead when the terminal
		// closes and, now and then, never reaps the process (tmux 3.3a): then from the zombie.
		const end = async (): Promise<string | undefined> => {
			const [dead, status, signal] = (await tmux('display-message', '-p', '-t', 'vm', '#{pane_dead}/#{pane_dead_status}/#{pane_dead_signal}')).split('/');
			if (dead !== '1') {
				return undefined;
			}

			return status === '' ? (signal === '' ? zombieEnd(vmwardenPid) : `signal ${signal}`) : `status ${status}`;
		};

		expect(await waitUntil(async () => (await end()) !== undefined, BOOT_MS)).toBe(true);
		const ended = await screen();
		expect({end: await end(), screen: ended}).toEqual({end: 'status 130', screen: ended});
		expect(ended).toContain('vmwarden: SIGINT: stopping VM 3100 (Ctrl-C again to kill it)');
		expect(ended).toContain('vmwarden-guest: power button');
		expect(ended).toMatch(/^VM 3100 died: SHUTDOWN \(the VM shut down, VMM exit status 0; caused by the caller, payload Finished\)$/m);

		expect(alive(vmmPid)).toBe(false);
	}, BOOT_TEST_TIMEOUT_MS);
});

describe('vmwarden serve with QEMU VMs, through the API', () => {
	const workspace = useE2eWorkspace();

	test('start a VM, see it running and its console, stop it and see its death; SIGTERM exits 0', async () => {
		const {qemu, kernel} = manifest();
		const config = serveConfig(workspace.work);
		const socket = path.join(workspace.work, 'vmwarden.sock');
		const env = {TMPDIR: workspace.tempRoot};
		const run = (...args: string[]) => execa(process.execPath, [VMWARDEN, ...args, '--socket', socket], {env, reject: false, timeout: BOOT_MS, stdin: 'ignore'});
		const daemon = execa(process.execPath, [VMWARDEN, 'serve', '--socket', socket, '--driver', 'qemu', '--accel', 'tcg', '--vmm', qemu, '--allow-dir', path.dirname(kernel), '--stop-timeout', '60000'], {env, reject: false, timeout: BOOT_TEST_TIMEOUT_MS, stdin: 'ignore'});
		workspace.cleanups.push(() => {
			daemon.kill('SIGKILL');
		});
		await waitForText(daemon.stderr, /Serving on/);

		const started = await run('start', config, '--json');
		expect(started.exitCode).toBe(0);
		const vm = JSON.parse(started.stdout) as {cid: number; state: string; pid: number};
		expect(vm).toMatchObject({cid: 2048, state: 'Running'});
		expect(alive(vm.pid)).toBe(true);

		const follower = run('console', String(vm.cid));
		expect(await waitForText(follower.stdout, /serving until the power button/, BOOT_MS)).toContain('vmwarden-guest: scenario serve');
		expect(await waitUntil(async () => (JSON.parse((await run('info', String(vm.cid), '--json')).stdout) as {payloadState: string}).payloadState === 'Ready', BOOT_MS)).toBe(true);

		const stopped = await run('stop', String(vm.cid), '--json');
		expect(stopped.exitCode).toBe(0);
		expect(JSON.parse(stopped.stdout)).toMatchObject({cid: vm.cid, state: 'Dead', death: {reason: 'SHUTDOWN', initiator: 'caller', payloadState: 'Finished', exitCode: 0}});
		// The console stream ends with the VM, after the guest's last words.
		const followed = await follower;
		expect(followed.exitCode).toBe(0);
		expect(followed.stdout).toContain('vmwarden-guest: power button');
		expect(alive(vm.pid)).toBe(false);
		const info = JSON.parse((await run('info', String(vm.cid), '--json')).stdout) as unknown;
		expect(info).toMatchObject({state: 'Dead', death: {reason: 'SHUTDOWN'}});

		daemon.kill('SIGTERM');
		expect((await daemon).exitCode).toBe(0);
	}, BOOT_TEST_TIMEOUT_MS);
});
