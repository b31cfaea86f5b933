import {once} from 'node:events';
import {setTimeout as delay} from 'node:timers/promises';
import {execa} from 'execa';
import {makeScratch, runSim, SIM, type SimBuildChoice} from '../helpers/sim-process.js';

const scratch = makeScratch();

afterAll(scratch.remove);

const CURRENT: SimBuildChoice = {build: 'current'};
const LEGACY: SimBuildChoice = {build: 'aosp-2022'};

test.each([
	['poweroff', CURRENT, 0, 0],
	['reboot', CURRENT, 32, 0],
	['crash', CURRENT, 33, 0],
	['panic', CURRENT, 34, 0],
	['watchdog', CURRENT, 36, 0],
	['poweroff', LEGACY, 0, 0],
	['reboot', LEGACY, 32, 0],
	['crash', LEGACY, 33, 0],
	['panic', LEGACY, 34, 0],
	// 36 arrived in October 2022: the 2022 build reports the watchdog's reset as a reset.
	['watchdog', LEGACY, 32, 0],
	['exit 7', CURRENT, 7, 7],
	['exit 0', CURRENT, 0, 0],
] as const)('%s (%o): %i with --extended-status, %i without', async (action, choice, extended, plain) => {
	const guest = scratch.guest(`final-${action.replace(' ', '-')}-${choice.build}`, 'console up', action);
	const [withStatus, without] = await Promise.all([runSim(['--extended-status', 'run', guest], choice), runSim(['run', guest], choice)]);
	expect(withStatus.exitCode).toBe(extended);
	expect(without.exitCode).toBe(plain);
	expect(withStatus.stdout).toBe('up');
});

test('a script without a final action powers off', async () => {
	const result = await runSim(['--extended-status', 'run', scratch.guest('no-final', 'console up')]);
	expect(result.exitCode).toBe(0);
	expect(result.stderr).toContain('exiting with success');
});

// Closing lines: CommandStatus::message in src/main.rs at f1e797a68; run_vm in src/main.rs at efdcf90a4.
test.each([
	['poweroff', CURRENT, 'exiting with success'],
	['watchdog', CURRENT, 'exiting with watchdog reset'],
	['poweroff', LEGACY, 'crosvm has exited normally'],
	['reboot', LEGACY, 'crosvm has exited normally due to reset request'],
	['crash', LEGACY, 'crosvm has exited due to a VM crash'],
	['panic', LEGACY, 'crosvm has exited due to a kernel panic in guest'],
] as const)('%s (%o) logs "%s"', async (action, choice, line) => {
	const result = await runSim(['--extended-status', 'run', scratch.guest(`closing-${action}-${choice.build}`, action)], choice);
	expect(result.stderr.split('\n').some(logLine => logLine.endsWith(`INFO crosvm] ${line}`))).toBe(true);
});

test.each(['SIGSEGV', 'SIGKILL', 'SIGTERM', 'HUP'])('signal %s: the VMM dies by it', async signal => {
	const result = await runSim(['--extended-status', 'run', scratch.guest(`signal-${signal}`, `signal ${signal}`)]);
	expect(result.exitCode).toBeUndefined();
	expect(result.signal).toBe(signal.startsWith('SIG') ? signal : `SIG${signal}`);
});

test('abort: crosvm\'s own panic, a message and SIGABRT', async () => {
	const result = await runSim(['--extended-status', 'run', scratch.guest('abort', 'abort')]);
	expect(result.signal).toBe('SIGABRT');
	expect(result.stderr).toContain('panicked');
});

/**
 * Starts a VM whose guest plays `lines`, writes a console line and hangs; resolves on that line. The subprocess is wrapped:
 * an async function returning execa's (thenable) subprocess would wait for it to end.
 */
async function startHanging(...lines: string[]) {
	const vm = execa(SIM, ['run', '--serial', 'type=stdout', scratch.guest(`hang-${lines.length}-${Date.now()}`, ...lines, 'console up', 'hang')], {reject: false});
	await once(vm.stdout, 'data');
	return {vm};
}

test('hang runs until killed; SIGTERM kills it (crosvm installs no SIGTERM handler)', async () => {
	const {vm} = await startHanging();
	await delay(300);
	expect(vm.exitCode).toBeNull();
	vm.kill('SIGTERM');
	const result = await vm;
	expect(result.signal).toBe('SIGTERM');
});

test('ignore-sigterm: SIGTERM is ignored, SIGKILL still kills', async () => {
	const {vm} = await startHanging('ignore-sigterm');
	vm.kill('SIGTERM');
	await delay(500);
	expect(vm.exitCode).toBeNull();
	expect(vm.signalCode).toBeNull();
	vm.kill('SIGKILL');
	const result = await vm;
	expect(result.signal).toBe('SIGKILL');
});

test('ignore-sigterm takes effect only when the guest reaches it', async () => {
	const vm = execa(SIM, ['run', '--serial', 'type=stdout', scratch.guest('late-ignore', 'console up', 'sleep 5000', 'ignore-sigterm', 'hang')], {reject: false});
	await once(vm.stdout, 'data');
	vm.kill('SIGTERM');
	const result = await vm;
	expect(result.signal).toBe('SIGTERM');
});
