import {once} from 'node:events';
import {resolve} from 'node:path';
import {setTimeout as delay} from 'node:timers/promises';
import {execa} from 'execa';
import {runSim, SIM} from '../helpers/sim-process.js';

const example = (name: string) => resolve('examples/guests', `${name}.guest`);

/** The examples that end by themselves, and how (with --extended-status, the current build). */
test.each([
	['poweroff', {exitCode: 0, signal: undefined}],
	['reboot', {exitCode: 32, signal: undefined}],
	['crash', {exitCode: 33, signal: undefined}],
	['panic', {exitCode: 34, signal: undefined}],
	['watchdog', {exitCode: 36, signal: undefined}],
	['failure-reason', {exitCode: 0, signal: undefined}],
	['payload-finished', {exitCode: 0, signal: undefined}],
	['payload-error', {exitCode: 0, signal: undefined}],
	['killed-by-signal', {exitCode: undefined, signal: 'SIGSEGV'}],
	['abort', {exitCode: undefined, signal: 'SIGABRT'}],
	['exit-code', {exitCode: 1, signal: undefined}],
])('examples/guests/%s.guest', async (name, outcome) => {
	const result = await runSim(['--extended-status', 'run', '--serial', 'type=sink', example(name)], {build: 'current'});
	expect({exitCode: result.exitCode, signal: result.signal}).toEqual(outcome);
});

test.each(['hang', 'ignores-stop', 'slow-boot'])('examples/guests/%s.guest runs until killed', async name => {
	const vm = execa(SIM, ['run', '--serial', 'type=sink', example(name)], {reject: false});
	await delay(1000);
	expect(vm.exitCode).toBeNull();
	vm.kill('SIGKILL');
	expect((await vm).signal).toBe('SIGKILL');
});

test('examples/guests/ignores-sigterm.guest survives SIGTERM', async () => {
	const vm = execa(SIM, ['run', '--serial', 'type=file,path=/proc/self/fd/3,num=3', example('ignores-sigterm')], {reject: false, stdio: ['ignore', 'pipe', 'pipe', 'pipe']});
	// The guest ignores SIGTERM from its first directive on; its payload report comes after.
	await once(vm.stdio[3], 'data');
	vm.kill('SIGTERM');
	await delay(500);
	expect(vm.signalCode).toBeNull();
	vm.kill('SIGKILL');
	expect((await vm).signal).toBe('SIGKILL');
});

test('examples/guests/failure-reason.guest writes its reason with context to ttyS1', async () => {
	const result = await execa(SIM, ['run', '--serial', 'type=file,path=/proc/self/fd/3,num=2', example('failure-reason')], {reject: false, stdio: ['ignore', 'pipe', 'pipe', 'pipe']});
	expect(result.stdio[3]).toBe('MICRODROID_PAYLOAD_VERIFICATION_FAILED|apk signature does not match');
});

