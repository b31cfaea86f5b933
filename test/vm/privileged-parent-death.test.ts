import {spawnSync} from 'node:child_process';
import {chmodSync, chownSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {execa} from 'execa';
import {afterAll, describe as describeAlways, expect, test} from '@jest/globals';
import {isProcessRunning, processIdentity, type ProcessIdentity} from '../../src/services/state-dir/process-identity.js';
import {until} from '../helpers/until.js';

// A host that is not root, as `setpriv` makes it: the kernel drops the parent-death signal when
// such a host execs a file with capabilities (a "secure exec", fs/exec.c `begin_new_exec`).
const NOBODY = ['--reuid=65534', '--regid=65534', '--clear-groups'];
const HOST_TIMEOUT_MS = 30_000;

/** What these tests need: root (to become another user and to set file capabilities) and a binary VMM. */
function readiness(): {ready: true; standIn: string} | {ready: false; reason: string} {
	if (process.geteuid?.() !== 0) {
		return {ready: false, reason: 'not root: setpriv cannot switch to an unprivileged user, setcap cannot set file capabilities'};
	}

	const setcap = spawnSync('setcap', ['-v', 'cap_net_raw+ep', '/proc/self/exe'], {encoding: 'utf8'});
	if (setcap.error !== undefined) {
		return {ready: false, reason: `setcap cannot run (${setcap.error.message}): install libcap2-bin`};
	}

	// A script cannot carry file capabilities: the VMM is the C stand-in.
	const build = spawnSync('bash', [path.resolve('bench/stand-in/build.sh')], {encoding: 'utf8'});
	if (build.status !== 0) {
		return {ready: false, reason: `the stand-in VMM did not build: ${build.stderr.trim().split('\n').at(-1) ?? build.status}`};
	}

	return {ready: true, standIn: build.stdout.trim()};
}

const environment = readiness();
if (!environment.ready) {
	console.warn(`SKIPPING the tests of VMMs with file capabilities: ${environment.reason}`);
}

const describe = environment.ready ? describeAlways : describeAlways.skip;

const work = mkdtempSync(path.join(os.tmpdir(), 'vmwarden-capable-'));
chmodSync(work, 0o755);
afterAll(() => {
	rmSync(work, {recursive: true, force: true});
});

let cases = 0;

/** A copy of the stand-in with `capabilities` on its file (none when empty), and a kernel and temp root for it. */
function capableVmm(capabilities: string, mode = 0o755): {vmm: string; kernel: string; tempRoot: string} {
	if (!environment.ready) {
		throw new Error('unreachable: the suite is skipped when the environment is not ready');
	}

	// Short: the control socket's path must fit a Unix socket address.
	const directory = path.join(work, String(cases++));
	mkdirSync(directory, {mode: 0o755});
	const vmm = path.join(directory, 'vmm');
	copyFileSync(environment.standIn, vmm);
	chmodSync(vmm, mode);
	if (capabilities !== '') {
		const setcap = spawnSync('setcap', [capabilities, vmm], {encoding: 'utf8'});
		expect(setcap.stderr).toBe('');
	}

	const kernel = path.join(directory, 'kernel');
	writeFileSync(kernel, 'kernel', {mode: 0o644});
	const tempRoot = path.join(directory, 'vms');
	mkdirSync(tempRoot, {mode: 0o755});
	chownSync(tempRoot, 65_534, 65_534);
	return {vmm, kernel, tempRoot};
}

type HostOutcome = {started: ProcessIdentity; tempDir: string} | {refused: string};

/**
 * Runs test/helpers/hosts/vm-host.ts behind `setpriv` with `hostOptions` (none: as root); stops at
 * the first of its report of a running VMM or its exit. Returns the host to kill as well.
 */
async function startHost(hostOptions: string[], files: {vmm: string; kernel: string; tempRoot: string}) {
	const hostCommand = [process.execPath, '--import', 'tsx', path.resolve('test/helpers/hosts/vm-host.ts'), files.vmm, files.kernel, files.tempRoot];
	const host = execa('setpriv', [...hostOptions, '--', ...hostCommand], {reject: false, cleanup: false});
	const outcome = await new Promise<HostOutcome>(resolve => {
		host.stdout.once('data', (chunk: Buffer) => {
			const {pid, tempDir} = JSON.parse(chunk.toString()) as {pid: number; tempDir: string};
			resolve({started: processIdentity(pid) ?? {pid, startTime: 'gone'}, tempDir});
		});
		void host.then(result => {
			resolve({refused: result.stderr});
		});
	});
	return {host, outcome};
}

/** Live processes whose command line names `directory` (the VMM's names its control socket there). */
function processesNaming(directory: string): string[] {
	return readdirSync('/proc').filter(entry => /^\d+$/.test(entry)).flatMap(pid => {
		try {
			const command = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
			return command.includes(directory) && processIdentity(Number(pid)) !== undefined ? [`${pid}: ${command.replaceAll('\0', ' ')}`] : [];
		} catch {
			return [];
		}
	});
}

describe('a VMM whose file carries capabilities never outlives its host', () => {
	test.each([
		// The kernel drops the parent-death signal at these execs: the spawner process, the VMM's
		// parent that stays, SIGKILLs it when the host's channel closes.
		['cap_net_raw+ep, an unprivileged host (a secure exec)', 'cap_net_raw+ep', 0o755, NOBODY],
		['cap_net_raw+p (no effective bit), an unprivileged host', 'cap_net_raw+p', 0o755, NOBODY],
		['cap_net_raw+ep, an unprivileged host under no_new_privs (no capability, still a secure exec)', 'cap_net_raw+ep', 0o755, ['--no-new-privs', ...NOBODY]],
		['no capabilities, an unprivileged host', '', 0o755, NOBODY],
		['no capabilities, execute-only (the kernel hides its exec from the host), an unprivileged host', '', 0o711, NOBODY],
		['cap_net_raw+p, an unprivileged host under no_new_privs (the file gives nothing)', 'cap_net_raw+p', 0o755, ['--no-new-privs', ...NOBODY]],
		['cap_net_raw+ep, a root host (file capabilities make a secure exec only for other users)', 'cap_net_raw+ep', 0o755, []],
	])('%s: the VMM runs and dies with its host killed by SIGKILL', async (_name, capabilities, mode, hostOptions) => {
		const files = capableVmm(capabilities, mode);
		const {host, outcome} = await startHost(hostOptions, files);
		host.kill('SIGKILL');
		await host;
		if (!('started' in outcome)) {
			throw new Error(`the host did not start its VM: ${outcome.refused}`);
		}

		try {
			await until(() => !isProcessRunning(outcome.started), 5000);
			expect(processesNaming(files.tempRoot)).toEqual([]);
		} finally {
			if (isProcessRunning(outcome.started)) {
				process.kill(outcome.started.pid, 'SIGKILL');
			}
		}
	}, HOST_TIMEOUT_MS);

	test('cap_net_raw+ep, an unprivileged host whose spawner process alone is SIGKILLed: the host kills the VMM it lost', async () => {
		const files = capableVmm('cap_net_raw+ep');
		const {host, outcome} = await startHost(NOBODY, files);
		try {
			if (!('started' in outcome)) {
				throw new Error(`the host did not start its VM: ${outcome.refused}`);
			}

			// The VMM's parent is the spawner, a child of setpriv's host.
			const spawner = Number(readFileSync(`/proc/${outcome.started.pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]);
			expect(readFileSync(`/proc/${spawner}/cmdline`, 'utf8').split('\0')[1]).toBe('-e');
			process.kill(spawner, 'SIGKILL');
			await until(() => !isProcessRunning(outcome.started), 5000);
			expect(host.exitCode).toBeNull();
		} finally {
			host.kill('SIGKILL');
			await host;
			if ('started' in outcome && isProcessRunning(outcome.started)) {
				process.kill(outcome.started.pid, 'SIGKILL');
			}
		}
	}, HOST_TIMEOUT_MS);
});
