import {chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {execFileSync} from 'node:child_process';
import {createServer, type Server} from 'node:net';
import {join, resolve} from 'node:path';
import {pathToFileURL} from 'node:url';
import {crosvmCommand} from '../../../src/services/crosvm/command.js';
import {createCrosvmDriver, crosvmDriver} from '../../../src/services/crosvm/driver.js';
import {DeathReason} from '../../../src/services/death/reason.js';
import {VmwardenError, StopRequestError} from '../../../src/errors.js';
import {defaultVmmEnvironment} from '../../../src/services/vmm/vmm-environment.js';

const dir = mkdtempSync(join(tmpdir(), 'vmwarden-driver-'));

afterAll(() => {
	rmSync(dir, {recursive: true, force: true});
});

/** A stand-in VMM binary: records its argv, one per line, and exits with `code`. */
function fakeVmm(name: string, body: string): string {
	const path = join(dir, name);
	writeFileSync(path, `#!/bin/sh\nprintf '%s\\n' "$@" > "${path}.args"\n${body}\n`);
	chmodSync(path, 0o755);
	return path;
}

const context = (vmmPath: string, controlSocket = join(dir, 'crosvm.sock')) => ({vmmPath, environment: defaultVmmEnvironment(), tempDir: dir, pid: 4242, controlSocket});

describe('exitReason: crosvm\'s --extended-status codes', () => {
	test.each<[number | undefined, NodeJS.Signals | undefined, DeathReason]>([
		[undefined, 'SIGKILL', DeathReason.KILLED],
		[undefined, 'SIGTERM', DeathReason.KILLED],
		[undefined, 'SIGABRT', DeathReason.KILLED],
		[0, undefined, DeathReason.SHUTDOWN],
		[1, undefined, DeathReason.ERROR],
		[32, undefined, DeathReason.REBOOT],
		[33, undefined, DeathReason.CRASH],
		[34, undefined, DeathReason.GUEST_PANIC],
		[35, undefined, DeathReason.UNKNOWN],
		[36, undefined, DeathReason.WATCHDOG_REBOOT],
		[2, undefined, DeathReason.UNKNOWN],
		[255, undefined, DeathReason.UNKNOWN],
		[undefined, undefined, DeathReason.UNKNOWN],
	])('exit %p signal %p -> %s', (exitCode, signal, reason) => {
		expect(crosvmDriver.exitReason({exitCode, signal}, {tempDir: dir})).toBe(reason);
	});
});

describe('command', () => {
	test('the crosvm driver puts the control socket in the VM\'s temporary directory', () => {
		const driver = createCrosvmDriver({dialect: 'aosp-2022'});
		expect(driver.name).toBe('crosvm');
		expect(driver.defaultPath).toBe('crosvm');
		const command = driver.command({kernel: '/vm/kernel'}, {cid: 20, tempDir: '/run/vm-20', payloadChannel: true});
		expect(command).toEqual(crosvmCommand({kernel: '/vm/kernel'}, {cid: 20, dialect: 'aosp-2022', controlSocket: '/run/vm-20/crosvm.sock', payloadChannel: true}));
		expect(command.args.slice(5, 7)).toEqual(['--socket', '/run/vm-20/crosvm.sock']);
	});

	test('the dialect and target reach the command line', () => {
		const linux = createCrosvmDriver({target: {os: 'linux', arch: 'x86_64'}});
		expect(() => linux.command({kernel: '/k', taskProfiles: ['a']}, {cid: 20, tempDir: '/t', payloadChannel: false})).toThrow(expect.objectContaining({field: 'taskProfiles'}) as Error);
		const android = createCrosvmDriver({target: {os: 'android', arch: 'x86_64'}});
		expect(android.command({kernel: '/k', taskProfiles: ['a']}, {cid: 20, tempDir: '/t', payloadChannel: false}).args).toContain('--task-profiles');
	});

	test('a control socket the caller names wins', () => {
		const command = crosvmDriver.command({kernel: '/k'}, {cid: 20, tempDir: '/t', controlSocket: '/elsewhere.sock', payloadChannel: false});
		expect(command.args).toContain('/elsewhere.sock');
	});
});

describe('the environment of crosvm\'s commands', () => {
	test('stop and suspend run with the VM\'s vmmEnvironment and nothing of the host environment', async () => {
		const vmm = fakeVmm('env-crosvm', `tr '\\0' '\\n' < "/proc/$$/environ" > "${join(dir, 'env-crosvm')}.$1.env"`);
		// suspend waits for the control socket to be there: a listening one is.
		const socket = join(dir, 'env.sock');
		const server = createServer();
		await new Promise<void>(resolve => server.listen(socket, resolve));
		process.env['VMWARDEN_TEST_HOST_SECRET'] = 'not for crosvm';
		try {
			const environment = {PATH: '/usr/bin:/bin', RUST_LOG: 'info'};
			await crosvmDriver.requestStop({...context(vmm, socket), environment});
			await crosvmDriver.suspend!({...context(vmm, socket), environment});
			for (const subcommand of ['stop', 'suspend']) {
				expect(readFileSync(`${vmm}.${subcommand}.env`, 'utf8').split('\n').filter(Boolean).sort()).toEqual(['PATH=/usr/bin:/bin', 'RUST_LOG=info']);
			}
		} finally {
			delete process.env['VMWARDEN_TEST_HOST_SECRET'];
			server.close();
		}
	});
});

describe('crosvm control commands under coverage', () => {
	test('suspend runs in a host that collects coverage, with the VM\'s environment and what Node adds for coverage', () => {
		const vmm = fakeVmm('coverage-crosvm', `tr '\\0' '\\n' < "/proc/$$/environ" > "${join(dir, 'coverage-crosvm')}.env"`);
		// Node's child_process reads the real process environment, which a test's process.env is not:
		// the host runs in a process of its own, started with coverage on. Outside the package, so
		// every import is by URL.
		const host = join(dir, 'coverage-host.mts');
		writeFileSync(host, `
import {createServer} from 'node:net';
import {crosvmDriver} from ${JSON.stringify(pathToFileURL(resolve('src/services/crosvm/driver.ts')).href)};
import {checkVmmEnvironment} from ${JSON.stringify(pathToFileURL(resolve('src/services/vmm/vmm-environment.ts')).href)};
const [vmm, socket] = process.argv.slice(2);
const server = createServer();
await new Promise(done => server.listen(socket, done));
await crosvmDriver.suspend({vmmPath: vmm, environment: checkVmmEnvironment('vmmEnvironment', {PATH: '/usr/bin:/bin'}), tempDir: '/nonexistent', pid: 1, controlSocket: socket});
server.close();
`);
		const coverage = join(dir, 'coverage');
		execFileSync(process.execPath, ['--import', 'tsx', host, vmm, join(dir, 'coverage.sock')], {env: {...process.env, NODE_V8_COVERAGE: coverage}, stdio: ['ignore', 'inherit', 'inherit']});
		// Node passes coverage on to what it spawns: the spawner process, and from it the command.
		expect(readFileSync(`${vmm}.env`, 'utf8').split('\n').filter(Boolean).sort()).toEqual([`NODE_V8_COVERAGE=${coverage}`, 'PATH=/usr/bin:/bin']);
	}, 30_000);
});

describe('control commands run from the spawner process', () => {
	let server: Server;
	const socket = join(dir, 'control.sock');
	beforeAll(async () => {
		server = createServer();
		await new Promise<void>(done => server.listen(socket, done));
	});
	afterAll(() => {
		server.close();
	});

	const statsJson = JSON.stringify({BalloonStats: {stats: {free_memory: 1048576}, balloon_actual: 4096}});

	test('its stdout is the answer, and its parent is a spawner process, not the host', async () => {
		// Its parent's pid and second argument, read while that parent surely runs.
		const vmm = fakeVmm('stats-ok', `echo "$PPID" > "${join(dir, 'stats-ok')}.ppid"; tr '\\0' '\\n' < "/proc/$PPID/cmdline" | sed -n 2p >> "${join(dir, 'stats-ok')}.ppid"; printf '%s' '${statsJson}'`);
		const stats = await crosvmDriver.balloonStats!({...context(vmm, socket), memoryBytes: 1 << 30});
		expect(stats).toEqual({actualBytes: 4096, stats: {freeMemory: 1048576}});
		expect(readFileSync(`${vmm}.args`, 'utf8')).toBe(`balloon_stats\n${socket}\n`);
		const [parent, secondArgument] = readFileSync(`${vmm}.ppid`, 'utf8').trim().split('\n');
		// Not this process: a spawner process, `node -e SOURCE`.
		expect({parent: Number(parent) === process.pid, secondArgument}).toEqual({parent: false, secondArgument: '-e'});
	});

	test('a command that prints more than its bound is ended, and refused', async () => {
		// 300 KiB of stdout, far over the statistics' bound, then it would sleep: it is ended first.
		const vmm = fakeVmm('stats-flood', 'head -c 307200 /dev/zero | tr "\\0" x; exec sleep 30');
		const started = Date.now();
		await expect(crosvmDriver.balloonStats!({...context(vmm, socket), memoryBytes: 1 << 30})).rejects.toMatchObject({
			name: 'VmControlError',
			message: expect.stringMatching(/ balloon_stats .* printed more than \d+ bytes/) as unknown,
		});
		// Ended when it overflowed, not at the control timeout (10 s).
		expect(Date.now() - started).toBeLessThan(5000);
	});

	test('a failing command is refused with its exit code and the end of its stderr', async () => {
		// 8 KiB of chatter first: the last line is the one that says what went wrong.
		const vmm = fakeVmm('suspend-fails', 'head -c 8192 /dev/zero | tr "\\0" . >&2; echo >&2; echo "no such VM" >&2; exit 3');
		const refusal = crosvmDriver.suspend!(context(vmm, socket));
		await expect(refusal).rejects.toMatchObject({name: 'VmControlError', exitCode: 3, message: expect.stringMatching(new RegExp(`^${vmm} suspend ${socket} exited with 3: \\.+\\nno such VM$`)) as unknown});
		await expect(refusal).rejects.toMatchObject({stderr: expect.stringMatching(/^\.{1013}\nno such VM$/) as unknown});
	});

	test('a command that is not there could not be started', async () => {
		await expect(crosvmDriver.suspend!(context(join(dir, 'no-crosvm'), socket))).rejects.toMatchObject({
			exitCode: undefined,
			message: expect.stringMatching(new RegExp(`^${join(dir, 'no-crosvm')} suspend ${socket} could not be started: .*ENOENT`)) as unknown,
		});
	});

	test('a command that never answers is killed after the control timeout', async () => {
		const vmm = fakeVmm('resume-hangs', 'exec sleep 30');
		const driver = createCrosvmDriver({controlTimeoutMs: 200});
		await expect(driver.resume!(context(vmm, socket))).rejects.toMatchObject({
			message: expect.stringContaining(`${vmm} resume ${socket} timed out after 200 ms`) as unknown,
		});
	});

	test('a command whose caller gave up is ended, and says so', async () => {
		const vmm = fakeVmm('balloon-hangs', 'exec sleep 30');
		const abort = new AbortController();
		const setting = crosvmDriver.setBalloon!({...context(vmm, socket), memoryBytes: 1 << 30, signal: abort.signal}, 1 << 20);
		setTimeout(() => {
			abort.abort();
		}, 100);
		await expect(setting).rejects.toMatchObject({message: expect.stringContaining(`${vmm} balloon 1048576 ${socket} was cancelled`) as unknown});
	});
});

describe('requestStop', () => {
	test('runs <vmm> stop <socket> with an argument array', async () => {
		const vmm = fakeVmm('stop-ok', 'exit 0');
		const socket = join(dir, 'a socket; rm -rf $HOME');
		await crosvmDriver.requestStop(context(vmm, socket));
		expect(readFileSync(`${vmm}.args`, 'utf8')).toBe(`stop\n${socket}\n`);
	});

	test('a failing stop rejects with StopRequestError', async () => {
		const vmm = fakeVmm('stop-fails', 'echo "failed to connect to socket" >&2; exit 1');
		const promise = crosvmDriver.requestStop(context(vmm));
		await expect(promise).rejects.toBeInstanceOf(StopRequestError);
		await expect(promise).rejects.toBeInstanceOf(VmwardenError);
		await expect(promise).rejects.toMatchObject({
			code: 'STOP_REQUEST_FAILED',
			exitCode: 1,
			stderr: 'failed to connect to socket',
			message: `${vmm} stop ${join(dir, 'crosvm.sock')} exited with 1: failed to connect to socket`,
		});
	});

	test('a VMM binary that does not exist', async () => {
		await expect(crosvmDriver.requestStop(context(join(dir, 'no-crosvm')))).rejects.toMatchObject({code: 'STOP_REQUEST_FAILED', exitCode: undefined});
	});

	test('no control socket: nothing to ask, nothing run', async () => {
		const vmm = fakeVmm('unused', 'exit 0');
		await expect(crosvmDriver.requestStop({...context(vmm), controlSocket: undefined})).rejects.toMatchObject({
			code: 'STOP_REQUEST_FAILED',
			message: 'cannot stop crosvm (pid 4242) gracefully: it has no control socket',
		});
		expect(existsSync(`${vmm}.args`)).toBe(false);
	});

	test('a stop that never gets an answer is killed after the timeout', async () => {
		const vmm = fakeVmm('stop-hangs', 'exec sleep 30');
		const driver = createCrosvmDriver({stopRequestTimeoutMs: 200});
		await expect(driver.requestStop(context(vmm))).rejects.toMatchObject({
			code: 'STOP_REQUEST_FAILED',
			message: `${vmm} stop ${join(dir, 'crosvm.sock')} timed out after 200 ms`,
		});
	});
});
