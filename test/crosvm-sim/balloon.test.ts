import {once} from 'node:events';
import {execa} from 'execa';
import {parseCrosvmBalloonStats} from '../../src/services/control/balloon.js';
import {makeScratch, runSim, SIM, type SimBuildChoice} from '../helpers/sim-process.js';

const scratch = makeScratch();

afterAll(scratch.remove);

const MIB = 1024 * 1024;

/** A VM with a control socket, running once its guest wrote its first console line. */
async function startVm(socket: string, build: SimBuildChoice = {}) {
	const guest = scratch.guest(`guest-${socket.length}-${build.build ?? 'current'}`, 'console up', 'hang');
	const vm = execa(SIM, ['--extended-status', 'run', '--socket', socket, '--mem', '1024', '--serial', 'type=stdout', guest], {reject: false, env: {CROSVM_SIM_BUILD: build.build ?? 'current'}});
	await once(vm.stdout, 'data');
	return {vm};
}

test.each(['current', 'aosp-2022'] as const)('%s: balloon SIZE sets the size balloon_stats reports, as serde pretty JSON', async build => {
	const socket = scratch.path(`balloon-${build}.sock`);
	const {vm} = await startVm(socket, {build});
	try {
		const adjust = await runSim(['balloon', String(256 * MIB), socket], {build});
		expect(adjust).toMatchObject({exitCode: 0, stdout: ''});
		const stats = await runSim(['balloon_stats', socket], {build});
		expect(stats.exitCode).toBe(0);
		// serde_json::to_string_pretty of VmResponse::BalloonStats: two-space indents, nulls spelled out.
		expect(stats.stdout).toContain('{\n  "BalloonStats": {\n    "stats": {\n      "swap_in": 0,');
		expect(stats.stdout).toContain('"shared_memory": null');
		expect(parseCrosvmBalloonStats(stats.stdout)).toMatchObject({actualBytes: 256 * MIB, stats: {totalMemory: 1024 * MIB}});
		expect((await runSim(['stop', socket], {build})).exitCode).toBe(0);
	} finally {
		vm.kill('SIGKILL');
	}

	await vm;
});

test('balloon --wait exists on the current build only', async () => {
	const socket = scratch.path('wait.sock');
	const {vm} = await startVm(socket);
	try {
		expect((await runSim(['balloon', '1024', socket, '--wait'])).exitCode).toBe(0);
		const old = await runSim(['balloon', '1024', socket, '--wait'], {build: 'aosp-2022'});
		expect(old.exitCode).toBe(1);
		expect(old.stderr).toContain('--wait');
	} finally {
		vm.kill('SIGKILL');
	}

	await vm;
});

test.each([
	{args: ['balloon', 'lots', '/nonexistent.sock'], stderr: 'Error parsing positional argument \'SIZE\' with value \'lots\': invalid digit found in string'},
	{args: ['balloon', '-1', '/nonexistent.sock'], stderr: 'arg parsing failed'},
	{args: ['balloon', '18446744073709551616', '/nonexistent.sock'], stderr: 'number too large to fit in target type'},
	{args: ['balloon', '1024'], stderr: 'Required positional arguments not provided'},
	{args: ['balloon_stats'], stderr: 'Required positional arguments not provided'},
])('refuses $args with exit 35', async ({args, stderr}) => {
	const result = await runSim(args);
	expect(result.exitCode).toBe(35);
	expect(result.stderr).toContain(stderr);
});

test('without a VM on the socket: exit 1, nothing on stdout from balloon', async () => {
	const adjust = await runSim(['balloon', '1024', scratch.path('absent.sock')]);
	expect(adjust.exitCode).toBe(1);
	expect(adjust.stderr).toContain('failed to connect to socket');
	expect((await runSim(['balloon_stats', scratch.path('absent.sock')])).exitCode).toBe(1);
});
