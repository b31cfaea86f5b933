import {makeScratch, runSim, type SimBuildChoice} from '../helpers/sim-process.js';

/**
 * Argument vectors crosvm refuses, with the exit status the emulated build gives (35 for an
 * argument error today, 1 in the 2022 build; 1 for a configuration or setup error) and a fragment of
 * the message on stderr. test/crosvm-sim/conformance.ts holds the full grammar of each build; this
 * table is about the whole process: stderr, stdout and setup failures. `$G` is a guest script that powers off, `$F` an ordinary existing file,
 * `$D` a directory, `$NONE` a path that does not exist.
 */
interface Rejection {
	args: string[];
	status: number;
	stderr: string;
	choice?: SimBuildChoice;
	env?: Record<string, string>;
}

const CURRENT: SimBuildChoice = {build: 'current', os: 'linux', arch: 'x86_64'};
const LEGACY: SimBuildChoice = {build: 'aosp-2022'};

const PARSE = 'arg parsing failed: ';
const CONFIG = 'exiting with error 1: ';

const rejections: Rejection[] = [
	// Top level and subcommands.
	{args: [], status: 35, stderr: `${PARSE}One of the following subcommands must be present`},
	{args: ['frobnicate'], status: 35, stderr: `${PARSE}Unrecognized argument: frobnicate`},
	{args: ['run', '--extended-status', '$G'], status: 35, stderr: `${PARSE}Unrecognized argument: --extended-status`},
	{args: ['--bogus', 'run', '$G'], status: 35, stderr: `${PARSE}Unrecognized argument: --bogus`},
	{args: ['stop'], status: 35, stderr: 'Required positional arguments not provided:\n    VM_SOCKET'},
	{args: ['stop', '$D/a.sock', '$D/b.sock'], status: 35, stderr: 'Unrecognized argument: $D/b.sock'},
	{args: ['suspend'], status: 35, stderr: 'Required positional arguments not provided'},
	// The split at the first '=' turns a switch's value into a positional.
	{args: ['run', '--disable-sandbox=true', '$G'], status: 35, stderr: `${PARSE}Unrecognized argument: $G`},
	{args: ['run', '--params', '-x=1', '$G'], status: 35, stderr: `${PARSE}Unrecognized argument: $G`},
	{args: ['run', '$G', '$F'], status: 35, stderr: `${PARSE}Unrecognized argument: $F`},
	{args: ['run', '--foo', '$G'], status: 35, stderr: 'Unrecognized argument: --foo'},
	{args: ['run', '$G', '--mem'], status: 35, stderr: "No value provided for option '--mem'."},
	{args: ['run', '--help', '--mem', '1', '$G'], status: 35, stderr: 'Trailing arguments are not allowed after `help`.'},
	// Single-valued options given twice, also through a short alias or the '=' form.
	{args: ['run', '--mem', '1024', '--mem', '2048', '$G'], status: 35, stderr: "Error parsing option '--mem' with value '2048': duplicate values provided"},
	{args: ['run', '--initrd', '$F', '-i', '$F', '$G'], status: 35, stderr: "Error parsing option '-i' with value '$F': duplicate values provided"},
	{args: ['run', '--socket=$D/a', '--socket', '$D/b', '$G'], status: 35, stderr: 'duplicate values provided'},
	{args: ['run', '--cpu-affinity', '0', '--cpu-affinity', '1', '$G'], status: 35, stderr: 'duplicate values provided'},
	// Values.
	{args: ['run', '--mem', '1G', '$G'], status: 35, stderr: "Error parsing option '--mem' with value '1G': invalid characters for number"},
	{args: ['run', '--mem', 'size=1024,size=2048', '$G'], status: 35, stderr: 'duplicate field `size`'},
	{args: ['run', '--mem', 'bytes=1024', '$G'], status: 35, stderr: 'unknown field `bytes`'},
	{args: ['run', '--cpus', 'two', '$G'], status: 35, stderr: "Error parsing option '--cpus' with value 'two': invalid characters for number"},
	{args: ['run', '--cid', '-3', '$G'], status: 35, stderr: 'invalid digit found in string'},
	// crosvm's parse_cpu_range, arch/src/lib.rs at f1e797a68.
	{args: ['run', '--cpu-affinity', '3-1', '$G'], status: 35, stderr: 'invalid CPU range 3-1 - ranges must be from low to high'},
	{args: ['run', '--cpu-affinity', '0,1,', '$G'], status: 35, stderr: 'index must be a non-negative integer'},
	{args: ['run', '--cpu-affinity', '0=0,1=1', '$G'], status: 35, stderr: 'invalid VCPU assignment syntax'},
	{args: ['run', '--cpu-affinity', '0=0:0=1', '$G'], status: 35, stderr: 'VCPU index must be unique'},
	{args: ['run', '--vsock', 'device=/dev/vhost-vsock', '$G'], status: 35, stderr: 'missing field `cid`'},
	{args: ['run', '--block', 'path=$F,id=abcdefghijklmnopqrstuvwxyz', '$G'], status: 35, stderr: 'disk id must be 20 or fewer characters'},
	{args: ['run', '--block', 'path=$F,ro=maybe', '$G'], status: 35, stderr: 'expected a boolean'},
	{args: ['run', '--block', 'path=$F,bogus=1', '$G'], status: 35, stderr: 'unknown field `bogus`'},
	{args: ['run', '--disk', '$F,lock=yes', '$G'], status: 35, stderr: 'expected a boolean'},
	// Serial grammar and limits.
	{args: ['run', '--serial', 'type=bogus', '$G'], status: 35, stderr: 'unknown variant `bogus`'},
	{args: ['run', '--serial', 'type=stdout,hardware=pci', '$G'], status: 35, stderr: 'unknown variant `pci`'},
	{args: ['run', '--serial', 'type=stdout,num=0', '$G'], status: 35, stderr: 'Serial port num must be at least 1'},
	{args: ['run', '--serial', 'type=stdout,num=5', '$G'], status: 35, stderr: 'Serial port num must be 4 or less'},
	{args: ['run', '--serial', 'type=stdout,num=256,hardware=virtio-console', '$G'], status: 35, stderr: 'invalid characters for number'},
	{args: ['run', '--serial', 'type=stdout,color=red', '$G'], status: 35, stderr: 'unknown field `color`'},
	{args: ['run', '--serial', 'type=stdout,stdin,input=$F', '$G'], status: 35, stderr: 'Cannot specify both stdin and input options'},
	{args: ['run', '--serial', 'type=stdout,console=yes', '$G'], status: 35, stderr: 'expected a boolean'},
	{args: ['run', '--serial', 'type=stdout,pci-address=00:01.0', '$G'], status: 35, stderr: 'only supported for virtio-console'},
	// Flags the build was not compiled with.
	{args: ['run', '--swiotlb', '8', '$G'], status: 35, stderr: 'Unrecognized argument: --swiotlb'},
	{args: ['run', '--task-profiles', 'SCHED_SP_TOP_APP', '$G'], status: 35, stderr: 'Unrecognized argument: --task-profiles'},
	{args: ['run', '--task-profiles', 'a', '$G'], status: 35, stderr: 'Unrecognized argument: --task-profiles', choice: {build: 'current', os: 'linux', arch: 'aarch64'}},
	// The 2022 build (crosvm at efdcf90a4, src/main.rs and src/crosvm/argument.rs): every error exits 1,
	// logged bare; the kernel ends option parsing; a value may not start with "-".
	{args: ['run', '$G', '--mem', '1024'], status: 1, stderr: 'too many arguments: A VM executable was already specified', choice: LEGACY},
	{args: ['run', '--params', '-x', '$G'], status: 1, stderr: 'expected parameter value: params', choice: LEGACY},
	{args: ['run', '--vsock', 'cid=3', '$G'], status: 1, stderr: 'unknown argument: vsock', choice: LEGACY},
	{args: ['run', '--block', '$F', '$G'], status: 1, stderr: 'unknown argument: block', choice: LEGACY},
	{args: ['run', '--mem', 'size=1024', '$G'], status: 1, stderr: 'invalid value "size=1024": this value for `mem` needs to be integer', choice: LEGACY},
	{args: ['run', '--mem', '1024', '--mem', '1024', '$G'], status: 1, stderr: 'too many arguments: `mem` already given', choice: LEGACY},
	{args: ['run', '--serial', 'type=stdout,console=yes', '$G'], status: 1, stderr: 'failed to parse key-value arguments: expected a boolean', choice: LEGACY},
	{args: ['run', '--serial', 'type=unix-stream,path=$F', '$G'], status: 1, stderr: 'unknown variant `unix-stream`', choice: LEGACY},
	{args: ['run', '--serial', 'type=file,num=5', '$G'], status: 1, stderr: 'Serial port num must be 4 or less', choice: LEGACY},
	{args: ['run', '--serial', 'console', '--serial', 'num=2,console', '$G'], status: 1, stderr: 'serial device 1 already set as console', choice: LEGACY},
	{args: ['run', '--disk', '$F,direct=true', '$G'], status: 1, stderr: 'while parsing "disk" parameter: unknown field `direct`', choice: LEGACY},
	{args: ['run', '--rwdisk', '$F,sparse=yes', '$G'], status: 1, stderr: 'expected a boolean', choice: LEGACY},
	{args: ['run', '--swiotlb', '8', '$G'], status: 1, stderr: 'unknown argument: swiotlb', choice: {build: 'aosp-2022', arch: 'x86_64'}},
	{args: ['run', '--task-profiles', 'a', '$G'], status: 1, stderr: 'unknown argument: task-profiles', choice: {build: 'aosp-2022', os: 'linux'}},
	{args: ['run', '--extended-status', '$G'], status: 1, stderr: 'unknown argument: extended-status', choice: LEGACY},
	{args: ['--log-level=debug', 'run', '$G'], status: 1, stderr: 'Unrecognized argument: --log-level=debug', choice: LEGACY},
	// Configuration checks after parsing: exit 1 in every build.
	{args: ['run'], status: 1, stderr: `${CONFIG}Executable is not specified`},
	{args: ['run', '--disable-sandbox'], status: 1, stderr: 'expected argument: `KERNEL`', choice: LEGACY},
	{args: ['run', '--bios', '$G', '$G'], status: 1, stderr: `${CONFIG}A VM executable was already specified`},
	{args: ['run', '--cid', '3', '--vsock', 'cid=4', '$G'], status: 1, stderr: '`cid` and `vsock` cannot be specified together'},
	{args: ['run', '--serial', 'type=stdout', '--serial', 'type=sink,num=1', '$G'], status: 1, stderr: `${CONFIG}serial hardware serial num 1`},
	{args: ['run', '--serial', 'type=stdout,num=1', '--serial', 'type=sink,num=1', '$G'], status: 1, stderr: 'serial hardware serial num 1', choice: LEGACY},
	{args: ['run', '--serial', 'type=sink,earlycon', '--serial', 'type=sink,num=2,earlycon', '$G'], status: 1, stderr: 'serial device 1 already set as earlycon'},
	{args: ['run', '--serial', 'type=sink,hardware=virtio-console,earlycon', '$G'], status: 1, stderr: 'earlycon not supported for hardware'},
	{args: ['run', '--serial', 'type=sink,stdin', '--serial', 'type=sink,num=2,stdin', '$G'], status: 1, stderr: 'already connected to standard input'},
	{args: ['run', '--protected-vm', '--protected-vm-without-firmware', '$G'], status: 1, stderr: 'Only one protection mode has to be specified'},
	// Setup: files that cannot be opened, descriptors that are not open, a stale socket, no pKVM.
	{args: ['run', '$NONE'], status: 1, stderr: 'failed to open kernel image $NONE: No such file or directory (os error 2)'},
	{args: ['run', '--bios', '$NONE'], status: 1, stderr: 'failed to open bios $NONE: No such file or directory'},
	{args: ['run', '--initrd', '$NONE', '$G'], status: 1, stderr: 'failed to open initrd $NONE'},
	{args: ['run', '--rwdisk', '$NONE', '$G'], status: 1, stderr: 'failed to open disk image $NONE'},
	{args: ['run', '--block', '$NONE', '$G'], status: 1, stderr: 'failed to open disk image $NONE'},
	{args: ['run', '--serial', 'type=file', '$G'], status: 1, stderr: 'serial device type file requires a path'},
	{args: ['run', '--serial', 'type=file,path=$D/missing/console.txt', '$G'], status: 1, stderr: 'No such file or directory'},
	{args: ['run', '/proc/self/fd/42'], status: 1, stderr: 'failed to open kernel image /proc/self/fd/42: Bad file descriptor (os error 9)'},
	{args: ['run', '--socket', '$F', '$G'], status: 1, stderr: 'failed to create control server: Address in use'},
	{args: ['run', '--protected-vm', '$G'], status: 1, stderr: 'does not support protected KVM', env: {CROSVM_SIM_NO_PROTECTED_KVM: '1'}},
	{args: ['run', '$F'], status: 1, stderr: 'invalid guest script: line 1: not a guest script'},
	{args: ['stop', '$D/nobody.sock'], status: 1, stderr: "failed to connect to socket at '$D/nobody.sock'"},
];

const scratch = makeScratch();
const substitutions: Record<string, string> = {
	$G: scratch.guest('guest', 'poweroff'),
	$F: scratch.file('plain.img', 'not a guest'),
	$NONE: scratch.path('does-not-exist'),
	$D: scratch.dir,
};

function substitute(text: string): string {
	return text.replaceAll(/\$(?:G|F|NONE|D)/g, token => substitutions[token]!);
}

afterAll(scratch.remove);

test('the table holds at least 30 vectors that crosvm rejects', () => {
	expect(rejections.length).toBeGreaterThanOrEqual(30);
});

test.each(rejections.map(rejection => [`${rejection.choice?.build ?? 'current'}${rejection.choice?.os ? `/${rejection.choice.os}` : ''}: ${rejection.args.join(' ')}`, rejection] as const))('%s', async (_name, rejection) => {
	const result = await runSim(rejection.args.map(argument => substitute(argument)), rejection.choice ?? CURRENT, {env: rejection.env ?? {}});
	expect(result.stderr).toContain(substitute(rejection.stderr));
	expect({status: result.exitCode, signal: result.signal}).toEqual({status: rejection.status, signal: undefined});
	// A refused start writes nothing to stdout (no guest ran).
	expect(result.stdout).toBe('');
});
