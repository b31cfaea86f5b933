import {readFileSync} from 'node:fs';
import {makeScratch, runSim, type SimBuildChoice} from '../helpers/sim-process.js';

/**
 * Argument vectors each build accepts: the guest powers off, so an accepted start exits 0.
 * `$G` is that guest, `$F` an existing file, `$D` a scratch directory.
 */
interface Acceptance {
	name: string;
	args: string[];
	choice: SimBuildChoice;
}

const CURRENT_X86: SimBuildChoice = {build: 'current', os: 'linux', arch: 'x86_64'};
const CURRENT_ARM_ANDROID: SimBuildChoice = {build: 'current', os: 'android', arch: 'aarch64'};
const LEGACY: SimBuildChoice = {build: 'aosp-2022'};

const acceptances: Acceptance[] = [
	{name: 'kernel only', args: ['run', '$G'], choice: CURRENT_X86},
	{name: 'options after the kernel', args: ['run', '$G', '--mem', '512', '--cpus', '2'], choice: CURRENT_X86},
	{name: 'key-value and hex forms', args: ['run', '--mem', 'size=0x200', '--cpus', 'num-cores=2,boot-cpu=1', '$G'], choice: CURRENT_X86},
	{name: 'the split at "=": --mem=1024 and a params value starting with "-"', args: ['run', '--mem=1024', '--params', '-x', '-p=quiet', '$G'], choice: CURRENT_X86},
	{name: 'a value holding "=" after "--params=" survives the single split', args: ['run', '--params=-x=1 console=hvc0', '$G'], choice: CURRENT_X86},
	{name: '-- ends options', args: ['run', '--mem', '256', '--', '$G'], choice: CURRENT_X86},
	{name: 'switches repeat; repeatable options repeat', args: ['--extended-status', '--extended-status', 'run', '--disable-sandbox', '--disable-sandbox', '--params', 'a', '--params', 'b c', '$G'], choice: CURRENT_X86},
	{name: 'top-level flags before the subcommand', args: ['--log-level', 'error', '--no-syslog', '--syslog-tag', 'vm', 'run', '$G'], choice: CURRENT_X86},
	{name: '--vsock, --block forms, deprecated --disk/--rwdisk', args: ['run', '--vsock', 'cid=3', '--block', '$F', '--block', 'path=$F,ro,sparse=false,direct=true,id=disk0', '--disk', '$F', '--rwdisk', '$F,o_direct=false', '$G'], choice: CURRENT_X86},
	{name: '--cid alone (deprecated in its help only)', args: ['run', '--cid', '5', '$G'], choice: CURRENT_X86},
	{name: 'serial grammar: type first, bare booleans, aliases, virtio-console above 4', args: ['run', '--serial', 'stdout', '--serial', 'sink,hardware=legacy-virtio-console,num=7,console', '--serial', 'type=file,path=$D/ttyS1.txt,num=2,earlycon', '$G'], choice: CURRENT_X86},
	{name: 'cpu affinity, both forms', args: ['run', '--cpu-affinity', '0=0:1=1-2', '$G'], choice: CURRENT_X86},
	{name: 'bios instead of a kernel, with a control socket in a directory', args: ['run', '--bios', '$G', '--socket', '$D'], choice: CURRENT_X86},
	{name: 'protected VM with --swiotlb on aarch64 and task profiles on Android', args: ['run', '--protected-vm', '--swiotlb', '12', '--task-profiles', 'a,b', '--task-profiles', 'c', '$G'], choice: CURRENT_ARM_ANDROID},
	{
		name: 'the reference run_vm argv',
		args: [
			'--extended-status', 'run', '--disable-sandbox', '--cid', '10', '--protected-vm', '--swiotlb', '12', '--mem', '1024', '--cpus', '2', '--cpu-affinity', '0=0:1=1',
			'--task-profiles', 'SCHED_SP_TOP_APP,MaxPerformance',
			'--serial=type=sink,hardware=serial,num=1', '--serial=type=file,path=$D/failure,hardware=serial,num=2', '--serial=type=sink,hardware=virtio-console,num=1',
			'--serial=type=sink,hardware=virtio-console,num=2', '--serial=type=sink,hardware=virtio-console,num=3', '--initrd', '$F', '--params', 'console=hvc0',
			'--disk', '$F', '--rwdisk', '$F', '$G',
		],
		choice: LEGACY,
	},
	{name: '2022: explicit booleans in --serial, --disk options', args: ['run', '--serial', 'type=stdout,console=true,num=1', '--disk', '$F,sparse=false,block_size=4096,id=root', '$G'], choice: LEGACY},
	{name: '2022: bare booleans, the first field without its key, ro on --disk', args: ['run', '--serial', 'stdout,console', '--disk', '$F,ro', '$G'], choice: LEGACY},
	{name: '2022: task profiles split at commas and repeated', args: ['run', '--task-profiles', 'a,b', '--task-profiles', 'c', '$G'], choice: LEGACY},
];

const scratch = makeScratch();
const substitutions: Record<string, string> = {
	$G: scratch.guest('guest', 'console booted', 'poweroff'),
	$F: scratch.file('disk.img', 'disk'),
	$D: scratch.dir,
};

afterAll(scratch.remove);

test.each(acceptances.map(acceptance => [`${acceptance.choice.build}: ${acceptance.name}`, acceptance] as const))('%s', async (_name, acceptance) => {
	const args = acceptance.args.map(argument => argument.replaceAll(/\$(?:G|F|D)/g, token => substitutions[token]!));
	const result = await runSim(args, acceptance.choice);
	expect(result.stderr).not.toMatch(/ERROR/);
	expect(result.exitCode).toBe(0);
});

// serde_keyvalue/src/key_values.rs at efdcf90a4: an unquoted value runs to the next comma.
test('2022: a serial path keeps an "=" in it', async () => {
	await runSim(['run', '--serial', `type=file,path=${scratch.dir}/a=b,num=1`, substitutions.$G!], LEGACY);
	expect(readFileSync(`${scratch.dir}/a=b`, 'utf8')).toBe('booted\n');
});

// src/main.rs at f1e797a68: no warning for --cid (deprecated in its help only), one for --disk/--rwdisk.
test('current: warns for --disk, not for --cid', async () => {
	const cid = await runSim(['run', '--cid', '5', substitutions.$G!], CURRENT_X86);
	const disk = await runSim(['run', '--disk', substitutions.$F!, substitutions.$G!], CURRENT_X86);
	expect(cid.stderr).not.toContain('WARN');
	expect(disk.stderr).toContain('WARN crosvm] Deprecated disk flags such as --[rw]disk or --[rw]root are passed. Use --block instead.');
	expect([cid.exitCode, disk.exitCode]).toEqual([0, 0]);
});

test('without any console, ttyS0 is a stdout console (crosvm\'s default serial)', async () => {
	const result = await runSim(['run', substitutions.$G!], CURRENT_X86);
	expect(result.stdout).toBe('booted');
});

test.each([
	[['--help'], 'Usage: crosvm [<options>] <command>'],
	[['help'], 'Commands:'],
	[['-h'], 'Usage: crosvm'],
	[['run', '--help'], 'Usage: crosvm run'],
	[['run', '-h'], '--cpu-affinity'],
	[['help', 'run'], 'Usage: crosvm run'],
	[['stop', '--help'], 'Usage: crosvm stop VM_SOCKET'],
])('%j prints usage on stdout and exits 0', async (args, fragment) => {
	const result = await runSim(args, CURRENT_X86);
	expect(result.stdout).toContain(fragment);
	expect(result.exitCode).toBe(0);
});

test('usage lists only the flags of the emulated build', async () => {
	const linux = await runSim(['run', '--help'], CURRENT_X86);
	const android = await runSim(['run', '--help'], CURRENT_ARM_ANDROID);
	expect(linux.stdout).not.toContain('--task-profiles');
	expect(linux.stdout).not.toContain('--swiotlb');
	expect(android.stdout).toContain('--task-profiles');
	expect(android.stdout).toContain('--swiotlb');
});
