import {existsSync, mkdirSync, readFileSync, writeFileSync} from 'node:fs';
import {basename, join, resolve} from 'node:path';
import {setTimeout as delay} from 'node:timers/promises';
import {execa} from 'execa';
import {listConfigFiles} from '../../src/services/config/files.js';
import {crosvmCommand, type CrosvmDialect, type CrosvmTarget} from '../../src/services/crosvm/command.js';
import {createCrosvmDriver} from '../../src/services/crosvm/driver.js';
import {PayloadLineDecoder} from '../../src/services/payload/protocol.js';
import {openDescriptors, type OpenedDescriptors} from '../../src/services/vmm/descriptors.js';
import {validateConfig} from '../../src/services/config/validate.js';
import type {DiskConfig, FileSource, VmConfig} from '../../src/services/config/vm-config.js';
import {ANDROID_ARM, ANDROID_X86, type GoldenConfig, goldenConfigs, LINUX_ARM, LINUX_X86} from '../helpers/golden-configs.js';
import {makeFixtureFiles, POWEROFF_GUEST} from '../helpers/fixture-files.js';
import {defaultVmmEnvironment} from '../../src/services/vmm/vmm-environment.js';

// `npm test` builds first; run `npm run build` before running this file alone.
const SIM = resolve('dist/crosvm-sim/cli.js');

const fixture = makeFixtureFiles('vmwarden-sim-accepts-');

afterAll(fixture.remove);

interface Case extends GoldenConfig {
	/** The guest script (kernel or bios); default: power off at once. */
	guest?: string;
	controlSocket?: boolean;
	payloadChannel?: boolean;
}

const cases: Case[] = [
	...Object.values(goldenConfigs),
	{name: 'protected on an x86_64 target (no --swiotlb in current)', target: LINUX_X86, config: {kernel: '/vm/kernel', protected: true, disks: [{image: '/vm/os.img', writable: false}]}},
	{name: 'a params value that starts with "-" and holds "="', target: LINUX_X86, config: {kernel: '/vm/kernel', params: '-x=1 console=hvc0'}},
	{name: 'task profiles on Android x86_64', target: ANDROID_X86, config: {kernel: '/vm/kernel', taskProfiles: ['a', 'b', 'c']}},
	{
		name: 'extras: control socket and payload channel',
		target: LINUX_ARM,
		config: {kernel: '/vm/kernel', consoleOutput: '/vm/console.txt', disks: [{image: '/vm/os.img', writable: true}]},
		controlSocket: true,
		payloadChannel: true,
	},
	{
		name: 'everything at once',
		target: ANDROID_ARM,
		config: {
			kernel: '/vm/kernel',
			initrd: '/vm/initrd',
			params: 'console=hvc0 quiet',
			disks: [{image: '/vm/os.img', writable: false}, {image: '/vm/data.img', writable: true}],
			protected: true,
			memoryMib: 1024,
			cpus: 2,
			cpuAffinity: '0,1',
			taskProfiles: ['SCHED_SP_TOP_APP'],
			consoleOutput: '/vm/console.txt',
			logOutput: '/vm/log.txt',
			indirectFiles: ['/vm/instance.img'],
			platformVersion: '~1.0',
			detectHangup: true,
		},
		controlSocket: true,
		payloadChannel: true,
	},
];

let serial = 0;

/** The config with each placeholder `/vm/NAME` replaced by a real file of its role, in a directory of its own. */
function realize(config: VmConfig, guest: string): VmConfig {
	const dir = join(fixture.dir, `vm-${serial++}`);
	const real = (source: FileSource): FileSource => typeof source === 'string' ? join(dir, basename(source)) : source;
	const realized: VmConfig = {
		...config,
		...(config.kernel === undefined ? {} : {kernel: real(config.kernel)}),
		...(config.bootloader === undefined ? {} : {bootloader: real(config.bootloader)}),
		...(config.initrd === undefined ? {} : {initrd: real(config.initrd)}),
		...(config.consoleOutput === undefined ? {} : {consoleOutput: real(config.consoleOutput)}),
		...(config.logOutput === undefined ? {} : {logOutput: real(config.logOutput)}),
		...(config.disks === undefined ? {} : {disks: config.disks.map((disk): DiskConfig => ({...disk, image: real(disk.image)}))}),
		...(config.indirectFiles === undefined ? {} : {indirectFiles: config.indirectFiles.map(real)}),
	};
	// A directory per VM, so that two runs never share a console file or a socket.
	mkdirSync(dir);
	for (const file of listConfigFiles(realized)) {
		if (typeof file.source === 'string' && file.access !== 'append') {
			writeFileSync(file.source, file.role === 'kernel' || file.role === 'bootloader' ? guest : Buffer.alloc(4096));
		}
	}

	return realized;
}

/**
 * execa's `stdio`: no stdin, piped output, then the plan's descriptors. execa's types allow only the
 * numbers 3 to 9 for an inherited descriptor, but it hands any number to child_process as it is.
 */
function childStdio(opened: OpenedDescriptors): ['ignore', 'pipe', 'pipe', ...Array<'pipe'>] {
	return ['ignore', 'pipe', 'pipe', ...opened.stdio as Array<'pipe'>];
}

function simEnvironment(dialect: CrosvmDialect, target: CrosvmTarget): Record<string, string> {
	return dialect === 'aosp-2022'
		? {CROSVM_SIM_BUILD: 'aosp-2022', CROSVM_SIM_OS: 'android', CROSVM_SIM_ARCH: 'aarch64'}
		: {CROSVM_SIM_BUILD: 'current', CROSVM_SIM_OS: target.os, CROSVM_SIM_ARCH: target.arch};
}

interface SimRun {
	/** Rewrites the argv before the run: for the checks that the simulator can refuse at all. */
	alter?: (args: string[]) => string[];
	/** The simulated build, when not the one matching the command line. */
	environment?: Record<string, string>;
}

/** Runs the simulator on the command line built for `testCase`, with the real descriptors. */
async function runSim(testCase: Case, dialect: CrosvmDialect, run: SimRun = {}) {
	const config = realize(testCase.config, testCase.guest ?? POWEROFF_GUEST);
	validateConfig(config, {createOutputs: true});
	const controlSocket = testCase.controlSocket ? join(fixture.dir, `vm-${serial - 1}`, 'crosvm.sock') : undefined;
	const command = crosvmCommand(config, {cid: 2048 + serial, dialect, target: testCase.target, controlSocket, payloadChannel: testCase.payloadChannel});
	const opened = openDescriptors(command.fds, {createOutputs: true});
	try {
		const result = await execa(SIM, run.alter ? run.alter(command.args) : command.args, {
			stdio: childStdio(opened),
			env: run.environment ?? simEnvironment(dialect, testCase.target),
			reject: false,
			timeout: 20_000,
		});
		return {result, config, command};
	} finally {
		opened.close();
	}
}

beforeAll(() => {
	if (!existsSync(SIM)) {
		throw new Error(`${SIM} is missing: run \`npm run build\` first`);
	}
});

describe.each<CrosvmDialect>(['aosp-2022', 'current'])('crosvm-sim accepts every %s command line', dialect => {
	test.each(cases.map(testCase => [testCase.name, testCase] as const))('%s', async (_name, testCase) => {
		const {result} = await runSim(testCase, dialect);
		// stderr shows in the diff when the simulator refuses.
		expect({exitCode: result.exitCode, signal: result.signal, stderr: result.exitCode === 0 ? '' : result.stderr}).toEqual({exitCode: 0, signal: undefined, stderr: ''});
	});
});

describe('the acceptance means something: the simulator refuses what crosvm would', () => {
	test('one --task-profiles per name, on a Linux build', async () => {
		const {result} = await runSim(goldenConfigs.affinityAndProfiles, 'current', {environment: {CROSVM_SIM_BUILD: 'current', CROSVM_SIM_OS: 'linux', CROSVM_SIM_ARCH: 'aarch64'}});
		expect(result.exitCode).toBe(35);
	});

	test('--swiotlb on a current x86_64 build', async () => {
		const {result} = await runSim(goldenConfigs.protectedThreeDisks, 'current', {environment: {CROSVM_SIM_BUILD: 'current', CROSVM_SIM_OS: 'linux', CROSVM_SIM_ARCH: 'x86_64'}});
		expect(result.exitCode).toBe(35);
	});

	// Today's crosvm (src/main.rs at f1e797a68) splits `-x=1 ...` at its "=" and exits 35; the 2022
	// parser (src/crosvm/argument.rs at efdcf90a4) takes no value starting with "-" and exits 1.
	test.each<[CrosvmDialect, number, RegExp]>([
		['aosp-2022', 1, /\] expected parameter value: params$/],
		['current', 35, /arg parsing failed: Unrecognized argument: \/proc\/self\/fd\/\d+$/],
	])('%s: a "-x=1" params value as its own argument is refused', async (dialect, exitCode, message) => {
		const testCase = cases.find(testCase => testCase.name.startsWith('a params value'))!;
		const tear = (args: string[]) => args.flatMap(arg => arg.startsWith('--params=') ? ['--params', arg.slice('--params='.length)] : [arg]);
		const {result, command} = await runSim(testCase, dialect, {alter: tear});
		expect(command.args).toContain('--params=-x=1 console=hvc0');
		expect(result.exitCode).toBe(exitCode);
		expect(result.stderr).toMatch(message);
	});
});

describe('the descriptors reach the guest devices they are meant for', () => {
	const guest = '#!crosvm-sim-guest\nconsole on the console\nkmsg in kmsg\nlog in the log\npayload started\npayload finished 7\npoweroff\n';

	test.each<CrosvmDialect>(['aosp-2022', 'current'])('%s', async dialect => {
		const testCase: Case = {...cases.find(testCase => testCase.name === 'everything at once')!, guest};
		const {result, config, command} = await runSim(testCase, dialect);
		expect(result.exitCode).toBe(0);
		const console = readFileSync(config.consoleOutput as string, 'utf8');
		expect(console).toContain('on the console');
		expect(console).toContain('in kmsg');
		expect(readFileSync(config.logOutput as string, 'utf8')).toContain('in the log');
		const payloadFd = command.fds.find(entry => entry.role === 'payload')!.childFd;
		const failureFd = command.fds.find(entry => entry.role === 'failure')!.childFd;
		const decoder = new PayloadLineDecoder();
		expect([...decoder.push(String(result.stdio[payloadFd])), ...decoder.end()]).toEqual([
			{ok: true, report: {type: 'started'}},
			{ok: true, report: {type: 'finished', exitCode: 7}},
		]);
		expect(result.stdio[failureFd]).toBe('');
	});
});

describe('crosvm stop through the driver', () => {
	test.each<[CrosvmDialect, CrosvmTarget]>([['aosp-2022', ANDROID_ARM], ['current', LINUX_X86]])('%s: a hanging guest exits 0 on requestStop', async (dialect, target) => {
		const config = realize({kernel: '/vm/kernel'}, '#!crosvm-sim-guest\nhang\n');
		const tempDir = join(fixture.dir, `vm-${serial - 1}`);
		const driver = createCrosvmDriver({dialect, target});
		const command = driver.command(config, {cid: 3000 + serial, tempDir, payloadChannel: false});
		const opened = openDescriptors(command.fds);
		const vm = execa(SIM, command.args, {stdio: childStdio(opened), env: simEnvironment(dialect, target), reject: false, timeout: 20_000});
		try {
			const socket = join(tempDir, 'crosvm.sock');
			for (let waited = 0; !existsSync(socket) && waited < 10_000 && vm.exitCode === null; waited += 50) {
				await delay(50);
			}

			await driver.requestStop({vmmPath: SIM, environment: defaultVmmEnvironment(), tempDir, pid: vm.pid!, controlSocket: socket});
			const result = await vm;
			expect(result.exitCode).toBe(0);
			expect(driver.exitReason({exitCode: result.exitCode, signal: result.signal}, {tempDir})).toBe('SHUTDOWN');
		} finally {
			vm.kill('SIGKILL');
			opened.close();
		}
	});
});
