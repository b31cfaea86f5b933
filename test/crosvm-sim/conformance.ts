/**
 * What each crosvm build the simulator plays accepts and refuses, one row per command line, read
 * from google/crosvm's source at the pinned commits (docs/crosvm-sim.md). Following a newer crosvm
 * is a change to this data. `$K` is a guest script (the kernel, also used as any existing file),
 * `$D` a scratch directory. `status`: 0 accepted (the guest powers off), 35 an argument error
 * (1 in the 2022 build), 1 a configuration error. Rows marked `binary` also run through the built
 * simulator; the others are read in-process by the simulator's own command-line reader.
 */
export const BUILDS = {
	/** efdcf90a4 (2022-06-13) for Android on aarch64: Android's launcher of mid-2022. */
	'2022': {build: 'aosp-2022', os: 'android', arch: 'aarch64'},
	'2022-x86': {build: 'aosp-2022', os: 'android', arch: 'x86_64'},
	'2022-linux': {build: 'aosp-2022', os: 'linux', arch: 'aarch64'},
	/** f1e797a68 (2026-08-21) for Linux on x86_64. */
	current: {build: 'current', os: 'linux', arch: 'x86_64'},
	'current-arm-android': {build: 'current', os: 'android', arch: 'aarch64'},
} as const;

export type BuildName = keyof typeof BUILDS;

export interface ConformanceRow {
	args: readonly string[];
	status: 0 | 1 | 35;
	/** A fragment of the error text (for a refusal). */
	error?: string;
	/** Also run through the built simulator (kept few: each is a process). */
	binary?: true;
}

export interface ConformanceGroup {
	build: BuildName;
	/** The crosvm source file(s) and commit the rows follow. */
	source: string;
	rows: readonly ConformanceRow[];
}

const MAIN_2022 = 'src/main.rs and src/crosvm/argument.rs at efdcf90a427e (2022-06-13)';

const KV_2022 = 'serde_keyvalue/src/key_values.rs at efdcf90a427e';

const CMDLINE = 'src/crosvm/cmdline.rs and src/main.rs at f1e797a68dad (2026-08-21)';

const KV = 'serde_keyvalue/src/key_values.rs at f1e797a68dad';

const TOO_LONG_ID = 'abcdefghijklmnopqrstuvwxyz';

export const CONFORMANCE: readonly ConformanceGroup[] = [
	{
		build: '2022',
		source: `${MAIN_2022}: argh parses the top level only (an error exits 1 with argh's text; no "=" split, no -h alias, no top-level --syslog-tag), run's arguments go to crosvm's own parser`,
		rows: [
			{args: [], status: 1, error: 'One of the following subcommands must be present', binary: true},
			{args: ['--help'], status: 0},
			{args: ['-h', 'run', '$K'], status: 1, error: 'Unrecognized argument: -h'},
			{args: ['--log-level=debug', 'run', '$K'], status: 1, error: 'Unrecognized argument: --log-level=debug'},
			{args: ['--syslog-tag', 'vm', 'run', '$K'], status: 1, error: 'Unrecognized argument: --syslog-tag'},
			{args: ['--extended-status', '--log-level', 'error', '--no-syslog', 'run', '$K'], status: 0},
			{args: ['stop'], status: 1, error: 'Required positional arguments not provided'},
		],
	},
	{
		build: '2022',
		source: `${MAIN_2022}: parse_arguments (the kernel ends option parsing, values never start with "-" unless glued with "="), set_arguments, validate_arguments`,
		rows: [
			{args: ['run', '$K'], status: 0, binary: true},
			{args: ['run', '--', '$K'], status: 0},
			{args: ['run', '$K', '--mem', '1024'], status: 1, error: 'A VM executable was already specified', binary: true},
			{args: ['run', '$K', '$K'], status: 1, error: 'A VM executable was already specified'},
			{args: ['run'], status: 1, error: 'expected argument: `KERNEL`', binary: true},
			{args: ['run', '--bogus', '$K'], status: 1, error: 'unknown argument: bogus'},
			{args: ['run', '-', '$K'], status: 1, error: 'expected argument short name after `-`'},
			{args: ['run', '--=x', '$K'], status: 1, error: 'expected parameter name before `=`'},
			{args: ['run', '--mem=', '$K'], status: 1, error: 'expected parameter value after `=`'},
			{args: ['run', '-h'], status: 0, binary: true},
			{args: ['run', '--help'], status: 0},
			// A switch given a value: parse_arguments retries without it and reports the first error.
			{args: ['run', '--help', '$K'], status: 1, error: 'unexpected parameter value: help'},
			{args: ['run', '--vsock', 'cid=3', '$K'], status: 1, error: 'unknown argument: vsock'},
			{args: ['run', '--block', '$K', '$K'], status: 1, error: 'unknown argument: block'},
			{args: ['run', '-b', '$K', '$K'], status: 1, error: 'unknown argument: b'},
		],
	},
	{
		build: '2022',
		source: `${MAIN_2022}: set_argument for each flag`,
		rows: [
			{args: ['run', '--disable-sandbox', '$K'], status: 0},
			{args: ['run', '--disable-sandbox', '--disable-sandbox', '$K'], status: 0},
			{args: ['run', '--disable-sandbox=true', '$K'], status: 1, error: 'unexpected parameter value: disable-sandbox'},
			{args: ['run', '--params', 'console=hvc0 quiet', '-p', 'a', '$K'], status: 0},
			{args: ['run', '--params=-x=1', '-p-y', '$K'], status: 0},
			{args: ['run', '--params', '-x', '$K'], status: 1, error: 'expected parameter value: params', binary: true},
			{args: ['run', '--mem', '1024', '$K'], status: 0},
			{args: ['run', '-m1024', '$K'], status: 0},
			{args: ['run', '-m', '+1024', '$K'], status: 0},
			{args: ['run', '--mem', 'size=1024', '$K'], status: 1, error: 'invalid value "size=1024": this value for `mem` needs to be integer'},
			{args: ['run', '--mem', '1G', '$K'], status: 1, error: 'needs to be integer'},
			{args: ['run', '--mem', '1024', '-m', '2048', '$K'], status: 1, error: 'too many arguments: `mem` already given'},
			{args: ['run', '--cpus', '2', '$K'], status: 0},
			{args: ['run', '-c', 'num-cores=2', '$K'], status: 1, error: 'this value for `cpus` needs to be integer'},
			{args: ['run', '--cpus', '1', '--cpus', '2', '$K'], status: 1, error: '`cpus` already given'},
			{args: ['run', '--cpu-affinity', '0,1-3,5', '$K'], status: 0},
			{args: ['run', '--cpu-affinity', '0=0:1=1-2', '$K'], status: 0},
			{args: ['run', '--cpu-affinity', '0-18446744073709551615', '$K'], status: 0},
			{args: ['run', '--cpu-affinity', '3-1', '$K'], status: 1, error: 'invalid value "3-1": CPU ranges must be from low to high'},
			{args: ['run', '--cpu-affinity', '1-2-3', '$K'], status: 1, error: 'invalid list syntax'},
			{args: ['run', '--cpu-affinity', '0=0,1=1', '$K'], status: 1, error: 'invalid VCPU assignment syntax'},
			{args: ['run', '--cpu-affinity', '0=0:0=1', '$K'], status: 1, error: 'VCPU index must be unique'},
			{args: ['run', '--cpu-affinity', '0', '--cpu-affinity', '1', '$K'], status: 1, error: '`cpu-affinity` already given'},
			{args: ['run', '--cid', '10', '$K'], status: 0},
			{args: ['run', '--cid', 'x', '$K'], status: 1, error: 'this value for `cid` must be an unsigned integer'},
			{args: ['run', '--cid', '-3', '$K'], status: 1, error: 'expected parameter value: cid'},
			{args: ['run', '--cid', '3', '--cid', '4', '$K'], status: 1, error: '`cid` alread given'},
			{args: ['run', '--socket', '$D/vm.sock', '$K'], status: 0},
			{args: ['run', '-s', '$D/a.sock', '--socket', '$D/b.sock', '$K'], status: 1, error: '`socket` already given'},
			{args: ['run', '--initrd', '$K', '-i', '$K', '$K'], status: 0},
			{args: ['run', '$K', '--initrd'], status: 1, error: 'A VM executable was already specified'},
			{args: ['run', '--initrd'], status: 1, error: 'expected parameter value: initrd'},
			{args: ['run', '--bios', '$K'], status: 0},
			{args: ['run', '--bios', '$K', '$K'], status: 1, error: 'A VM executable was already specified: Some(Bios('},
			// The last protection flag wins: the uniqueness check arrived on 2022-09-01 (d6e88c9bf).
			{args: ['run', '--protected-vm', '--protected-vm-without-firmware', '$K'], status: 0},
			{args: ['run', '--protected-vm=yes', '$K'], status: 1, error: 'unexpected parameter value: protected-vm'},
			{args: ['run', '--protected-vm-without-firmware=yes', '$K'], status: 1, error: 'unexpected parameter value: protected-vm-without-firmware'},
			{args: ['run', '--unprotected-vm-with-firmware', '$K', '$K'], status: 0},
			{args: ['run', '$K', '--unprotected-vm-with-firmware'], status: 1, error: 'A VM executable was already specified'},
			{args: ['run', '--unprotected-vm-with-firmware'], status: 1, error: 'expected parameter value: unprotected-vm-with-firmware'},
			{args: ['run', '--syslog-tag', 'vm', '$K'], status: 0},
			{args: ['run', '--syslog-tag', 'a', '--syslog-tag', 'b', '$K'], status: 1, error: '`syslog-tag` already given'},
			// Android builds only; split at commas (the launcher joins its profiles), repeatable.
			{args: ['run', '--task-profiles', 'SCHED_SP_TOP_APP,MaxPerformance', '--task-profiles', 'c', '$K'], status: 0, binary: true},
			{args: ['run', '--task-profiles'], status: 1, error: 'expected parameter value: task-profiles'},
			// aarch64 builds only.
			{args: ['run', '--swiotlb', '12', '$K'], status: 0},
			{args: ['run', '--swiotlb', 'big', '$K'], status: 1, error: 'this value for `swiotlb` needs to be integer'},
		],
	},
	{build: '2022-x86', source: `${MAIN_2022}: swiotlb is #[cfg(target_arch = "aarch64")]`, rows: [{args: ['run', '--swiotlb', '8', '$K'], status: 1, error: 'unknown argument: swiotlb', binary: true}]},
	{build: '2022-linux', source: `${MAIN_2022}: task-profiles is #[cfg(target_os = "android")]`, rows: [{args: ['run', '--task-profiles', 'a', '$K'], status: 1, error: 'unknown argument: task-profiles'}]},
	{
		build: '2022',
		source: `${MAIN_2022} (DiskOption of devices/src/virtio/block/block.rs, SerialParameters of devices/src/serial_device.rs, parse_serial_options) through ${KV_2022}`,
		rows: [
			{args: ['run', '--disk', '$K', '--rwdisk', '$K', '$K'], status: 0},
			{args: ['run', '-d', '$K,ro,sparse=false,o_direct=true,block_size=4096,id=root', '$K'], status: 0, binary: true},
			{args: ['run', '--rwdisk', '$K,ro=', '$K'], status: 0},
			{args: ['run', '--disk', 'ro', '$K'], status: 1, error: 'syntax error: while parsing "disk" parameter: missing field `path`'},
			{args: ['run', '--disk', '$K,direct=true', '$K'], status: 1, error: 'unknown field `direct`'},
			{args: ['run', '--rwdisk', '$K,sparse=yes', '$K'], status: 1, error: 'expected a boolean'},
			{args: ['run', '--rwdisk', `$K,id=${TOO_LONG_ID}`, '$K'], status: 1, error: 'disk id must be 20 or fewer characters'},
			{args: ['run', '--disk', '$K,block_size=0x1000', '$K'], status: 0},
			{args: ['run', '--disk', '$K,block_size=0X1000', '$K'], status: 1, error: 'expected a number or number contains invalid digits'},
			{args: ['run', '--serial', 'stdout', '$K'], status: 0},
			{args: ['run', '--serial', 'console', '$K'], status: 0},
			{args: ['run', '--serial', 'type=stdout,console,num=1', '--serial', 'type=sink,num=2,out_timestamp,debugcon_port=0xe9', '$K'], status: 0},
			// A value runs to the next comma: path=/a=b is "/a=b". Quotes, single or double, keep commas.
			{args: ['run', '--serial', 'type=file,path=$D/cut=kept', '$K'], status: 0, binary: true},
			{args: ['run', '--serial', 'type=file,path=\'$D/a,b\'', '$K'], status: 0},
			{args: ['run', '--serial', 'type=unix-stream,path=$K', '$K'], status: 1, error: 'unknown variant `unix-stream`'},
			{args: ['run', '--serial', 'type=stdout,hardware=legacy-virtio-console', '$K'], status: 1, error: 'unknown variant `legacy-virtio-console`'},
			{args: ['run', '--serial', 'type=stdout,out-timestamp', '$K'], status: 1, error: 'unknown field `out-timestamp`'},
			{args: ['run', '--serial', 'type=stdout,pci-address=00:01.0', '$K'], status: 1, error: 'unknown field `pci-address`'},
			{args: ['run', '--serial', 'type=file,num=5', '$K'], status: 1, error: 'invalid value "5": Serial port num must be 4 or less'},
			{args: ['run', '--serial', 'num=0', '$K'], status: 1, error: 'Serial port num must be at least 1'},
			{args: ['run', '--serial', 'stdin,input=$K', '$K'], status: 1, error: 'too many arguments: Cannot specify both stdin and input options'},
			{args: ['run', '--serial', 'type=stdout,console=yes', '$K'], status: 1, error: 'failed to parse key-value arguments: expected a boolean'},
			{args: ['run', '--serial', 'console', '--serial', 'num=2,console', '$K'], status: 1, error: 'serial device 1 already set as console', binary: true},
			{args: ['run', '--serial', 'type=stdout', '--serial', 'type=sink,num=1', '$K'], status: 1, error: 'serial hardware serial num 1'},
			{args: ['run', '--serial', 'type=sink,hardware=virtio-console,earlycon', '$K'], status: 1, error: 'invalid value "virtio-console": earlycon not supported for hardware'},
		],
	},
	{
		build: 'current',
		source: `${CMDLINE}: prepare_argh_args (split at the first "=", -h to --help), argh, exit 35 for an argument error (since 0bde005ec, 2022-08-09)`,
		rows: [
			{args: [], status: 35, error: 'One of the following subcommands must be present', binary: true},
			{args: ['-h'], status: 0},
			{args: ['--log-level=error', '--syslog-tag', 'vm', '--no-syslog', 'run', '$K'], status: 0},
			{args: ['--bogus', 'run', '$K'], status: 35, error: 'Unrecognized argument: --bogus'},
			{args: ['run', '--extended-status', '$K'], status: 35, error: 'Unrecognized argument: --extended-status'},
			{args: ['stop'], status: 35, error: 'Required positional arguments not provided'},
			{args: ['stop', '$D/a.sock', '$D/b.sock'], status: 35, error: 'Unrecognized argument: $D/b.sock'},
			{args: ['run', '$K', '--mem', '512', '--cpus', '2'], status: 0, binary: true},
			{args: ['run', '$K', '$K'], status: 35, error: 'Unrecognized argument: $K'},
			{args: ['run'], status: 1, error: 'Executable is not specified', binary: true},
			{args: ['run', '--bios', '$K', '$K'], status: 1, error: 'A VM executable was already specified'},
			{args: ['run', '--bios', '$K'], status: 0},
			{args: ['run', '--bios'], status: 35, error: 'No value provided for option \'--bios\''},
			{args: ['run', '--help'], status: 0},
			{args: ['run', '--help', '--mem', '1', '$K'], status: 35, error: 'Trailing arguments are not allowed after `help`.'},
			{args: ['run', '--disable-sandbox', '--disable-sandbox', '$K'], status: 0},
			// The split makes `true` the kernel and the real kernel an extra positional.
			{args: ['run', '--disable-sandbox=true', '$K'], status: 35, error: 'Unrecognized argument: $K'},
			{args: ['run', '--params', '-x', '-p', 'a', '$K'], status: 0},
			{args: ['run', '--params', '-x=1', '$K'], status: 35, error: 'Unrecognized argument: $K', binary: true},
			{args: ['run', '--params=-x=1', '$K'], status: 0},
			// `-h` is rewritten to `--help` first, then taken as the value: the guest gets `--help`.
			{args: ['run', '--params', '-h', '$K'], status: 0},
			{args: ['run', '$K', '--params'], status: 35, error: 'No value provided for option \'--params\''},
			{args: ['run', '--initrd', '$K', '$K'], status: 0},
			{args: ['run', '--initrd', '$K', '-i', '$K', '$K'], status: 35, error: 'Error parsing option \'-i\' with value \'$K\': duplicate values provided'},
			{args: ['run', '--socket', '$D/vm.sock', '$K'], status: 0},
			{args: ['run', '--socket=$D/a', '-s', '$D/b', '$K'], status: 35, error: 'duplicate values provided'},
			{args: ['run', '--protected-vm', '$K'], status: 0},
			{args: ['run', '--protected-vm-without-firmware', '$K'], status: 0},
			{args: ['run', '--protected-vm-with-firmware', '$K', '$K'], status: 0},
			{args: ['run', '--unprotected-vm-with-firmware', '$K', '$K'], status: 0},
			{args: ['run', '--protected-vm', '--protected-vm-without-firmware', '$K'], status: 1, error: 'Only one protection mode has to be specified'},
			{args: ['run', '--protected-vm-with-firmware', '$K', '--unprotected-vm-with-firmware', '$K', '$K'], status: 1, error: 'Only one protection mode'},
			{args: ['run', '--syslog-tag', 'vm', '$K'], status: 0},
			{args: ['run', '--syslog-tag', 'a', '--syslog-tag', 'b', '$K'], status: 35, error: 'duplicate values provided'},
			// aarch64 builds only since 2025; Android builds only.
			{args: ['run', '--swiotlb', '8', '$K'], status: 35, error: 'Unrecognized argument: --swiotlb'},
			{args: ['run', '--task-profiles', 'a', '$K'], status: 35, error: 'Unrecognized argument: --task-profiles'},
		],
	},
	{
		build: 'current',
		source: `${CMDLINE} (MemOptions, CpuOptions and parse_cpu_affinity of src/crosvm/config.rs; CpuSet of arch/src/lib.rs; VsockConfig of devices/src/virtio/vsock/sys/linux.rs) through ${KV}`,
		rows: [
			{args: ['run', '--mem', '1024', '$K'], status: 0},
			{args: ['run', '-m=size=0x200', '$K'], status: 0},
			{args: ['run', '--mem', '0X10', '$K'], status: 35, error: 'invalid characters for number', binary: true},
			{args: ['run', '--mem', '+5', '$K'], status: 35, error: 'invalid characters for number'},
			{args: ['run', '--mem', '1G', '$K'], status: 35, error: 'Error parsing option \'--mem\' with value \'1G\': invalid characters for number'},
			{args: ['run', '--mem', 'size=1024,size=2048', '$K'], status: 35, error: 'duplicate field `size`'},
			{args: ['run', '--mem', 'bytes=1024', '$K'], status: 35, error: 'unknown field `bytes`, expected `size`'},
			{args: ['run', '--mem', '1024', '--mem', '2048', '$K'], status: 35, error: 'Error parsing option \'--mem\' with value \'2048\': duplicate values provided'},
			{args: ['run', '--cpus', '2', '$K'], status: 0},
			{args: ['run', '-c', 'num-cores=4,boot-cpu=1,clusters=[[0,1],[2-3]],freq-domains=[[0-3]]', '$K'], status: 0},
			{args: ['run', '--cpus', '2,core-types=[atom=[0],core=[1]]', '$K'], status: 0},
			{args: ['run', '--cpus', '2,core-types=[atom=[0]]', '$K'], status: 35, error: 'missing field `core`'},
			{args: ['run', '--cpus', '2,sve=[auto=true]', '$K'], status: 35, error: 'unknown field `sve`', binary: true},
			{args: ['run', '--cpus', '2,mte', '$K'], status: 35, error: 'unknown field `mte`'},
			{args: ['run', '--cpus', 'two', '$K'], status: 35, error: 'invalid characters for number'},
			{args: ['run', '--cpus', '2,clusters=[[3-1]]', '$K'], status: 35, error: 'invalid CPU range 3-1 - ranges must be from low to high'},
			{args: ['run', '--cpu-affinity', '0,1-3,5', '$K'], status: 0},
			{args: ['run', '--cpu-affinity', '0=0:1=1-2', '$K'], status: 0},
			{args: ['run', '--cpu-affinity', '0-18446744073709551615', '$K'], status: 0, binary: true},
			{args: ['run', '--cpu-affinity', '3-1', '$K'], status: 35, error: 'invalid CPU range 3-1 - ranges must be from low to high'},
			{args: ['run', '--cpu-affinity', '0,1,', '$K'], status: 35, error: 'invalid CPU index  - index must be a non-negative integer'},
			{args: ['run', '--cpu-affinity', '0=0,1=1', '$K'], status: 35, error: 'invalid value 0=0,1=1: invalid VCPU assignment syntax'},
			{args: ['run', '--cpu-affinity', '0=0:0=1', '$K'], status: 35, error: 'VCPU index must be unique'},
			{args: ['run', '--cpu-affinity', '0', '--cpu-affinity', '1', '$K'], status: 35, error: 'duplicate values provided'},
			{args: ['run', '--cid', '5', '$K'], status: 0},
			{args: ['run', '--cid', '-3', '$K'], status: 35, error: 'invalid digit found in string'},
			{args: ['run', '--cid', '3', '--vsock', 'cid=4', '$K'], status: 1, error: '`cid` and `vsock` cannot be specified together'},
			{args: ['run', '--vsock', 'cid=3', '$K'], status: 0},
			{args: ['run', '--vsock', '3,device=/dev/vhost-vsock,max-queue-sizes=[256,256,256]', '$K'], status: 0},
			{args: ['run', '--vsock', 'cid=3,max-queue-sizes=[1,2]', '$K'], status: 35, error: 'invalid length 2, expected an array of length 3'},
			{args: ['run', '--vsock', 'cid=3,max-queue-sizes=[1,2,3,4]', '$K'], status: 35, error: 'expected \']\''},
			{args: ['run', '--vsock', 'device=/dev/vhost-vsock', '$K'], status: 35, error: 'missing field `cid`'},
		],
	},
	{
		build: 'current-arm-android',
		source: `${CMDLINE}: aarch64's CpuOptions (mte, sve), --swiotlb, Android's --task-profiles (repeatable, never split)`,
		rows: [
			{args: ['run', '--cpus', '2,sve=[auto=true],mte', '$K'], status: 0},
			{args: ['run', '--cpus', '2,sve=[auto=maybe]', '$K'], status: 35, error: 'expected a boolean'},
			{args: ['run', '--cpus', '2,core-types=[atom=[0],core=[1]]', '$K'], status: 35, error: 'unknown field `core-types`'},
			{args: ['run', '--protected-vm', '--swiotlb', '12', '--task-profiles', 'a,b', '--task-profiles', 'c', '$K'], status: 0, binary: true},
			{args: ['run', '--swiotlb', '12', '--swiotlb', '12', '$K'], status: 35, error: 'duplicate values provided'},
			{args: ['run', '$K', '--task-profiles'], status: 35, error: 'No value provided for option \'--task-profiles\''},
		],
	},
	{
		build: 'current',
		source: `${CMDLINE} (DiskOption of devices/src/virtio/block/mod.rs, PciAddress of resources/src/pci_address.rs) through ${KV}`,
		rows: [
			{args: ['run', '--block', '$K', '$K'], status: 0},
			{args: ['run', '-b', 'path=$K,ro,root,sparse=false,direct=true,lock=false,id=disk0,bootindex=1', '$K'], status: 0, binary: true},
			{args: ['run', '--block', '$K,o_direct=true,block_size=512,async_executor=epoll,dontcache,multiple-workers,packed-queue', '$K'], status: 0},
			{args: ['run', '--block', '\'$K\',pci-address=00:01.0', '$K'], status: 0},
			// The first field without a key: a path unless it is a key name (`ro` is ro=true).
			{args: ['run', '--block', '/x/a=b', '$K'], status: 0},
			{args: ['run', '--block', 'ro', '$K'], status: 35, error: 'missing field `path`', binary: true},
			{args: ['run', '--block', '$K,num-queues=2', '$K'], status: 35, error: 'unknown field `num-queues`', binary: true},
			{args: ['run', '--block', '$K,ro=maybe', '$K'], status: 35, error: 'expected a boolean'},
			{args: ['run', '--block', '$K,ro=', '$K'], status: 35, error: 'expected a boolean'},
			{args: ['run', '--block', `$K,id=${TOO_LONG_ID}`, '$K'], status: 35, error: 'disk id must be 20 or fewer characters'},
			{args: ['run', '--block', '$K,pci-address=00:20.0', '$K'], status: 35, error: 'Device out of range'},
			{args: ['run', '--block', '$K,async-executor=threads', '$K'], status: 35, error: 'unknown variant `threads`'},
			{args: ['run', '--block', '"$K', '$K'], status: 35, error: 'expected a string'},
			{args: ['run', '--disk', '$K', '-r', '$K,sparse=false', '$K'], status: 0},
			{args: ['run', '--disk', 'ro', '$K'], status: 35, error: 'missing field `path`'},
			{args: ['run', '--rwdisk', '$K,lock=yes', '$K'], status: 35, error: 'expected a boolean'},
		],
	},
	{
		build: 'current',
		source: `${CMDLINE} (SerialParameters of devices/src/serial_device.rs, validate_serial_parameters of src/crosvm/config.rs; two consoles allowed since f934bc041, 2024-02-21) through ${KV}`,
		rows: [
			{args: ['run', '--serial', 'stdout', '$K'], status: 0},
			{args: ['run', '--serial', 'console', '--serial', 'hardware=virtio-console,console', '$K'], status: 0, binary: true},
			{args: ['run', '--serial', 'sink,hardware=legacy-virtio-console,num=7,console,name=hvc,max-queue-sizes=[256,256]', '$K'], status: 0},
			{args: ['run', '--serial', 'type=file,path=\'$D/a,b\',out_timestamp,debugcon_port=0x402', '$K'], status: 0, binary: true},
			{args: ['run', '--serial', 'type=file,path="$D/c\\"d"', '$K'], status: 0},
			{args: ['run', '--serial', 'type=unix-stream,path=$D/s,input-unix-stream', '$K'], status: 0},
			{args: ['run', '--serial', 'hardware=virtio-console,pci-address=00:01.0', '$K'], status: 0},
			{args: ['run', '--serial', 'earlycon,hardware=virtio-console', '$K'], status: 1, error: 'earlycon not supported for hardware', binary: true},
			{args: ['run', '--serial', 'type=bogus', '$K'], status: 35, error: 'unknown variant `bogus`'},
			{args: ['run', '--serial', 'type=stdout,hardware=pci', '$K'], status: 35, error: 'unknown variant `pci`'},
			{args: ['run', '--serial', 'type=stdout,num=0', '$K'], status: 35, error: 'Serial port num must be at least 1'},
			{args: ['run', '--serial', 'type=stdout,num=5', '$K'], status: 35, error: 'Serial port num must be 4 or less'},
			{args: ['run', '--serial', 'type=stdout,num=256,hardware=virtio-console', '$K'], status: 35, error: 'invalid characters for number'},
			{args: ['run', '--serial', 'type=stdout,color=red', '$K'], status: 35, error: 'unknown field `color`'},
			{args: ['run', '--serial', 'type=stdout,stdin,input=$K', '$K'], status: 35, error: 'Cannot specify both stdin and input options'},
			{args: ['run', '--serial', 'type=stdout,console=yes', '$K'], status: 35, error: 'expected a boolean'},
			{args: ['run', '--serial', 'type=stdout,pci-address=00:01.0', '$K'], status: 35, error: 'only supported for virtio-console'},
			{args: ['run', '--serial', 'type=file,path=a"b', '$K'], status: 35, error: '" and \' can only be used in quoted strings'},
			{args: ['run', '--serial', 'type=stdout', '--serial', 'type=sink,num=1', '$K'], status: 1, error: 'serial hardware serial num 1'},
			{args: ['run', '--serial', 'type=sink,earlycon', '--serial', 'type=sink,num=2,earlycon', '$K'], status: 1, error: 'serial device 1 already set as earlycon'},
			{args: ['run', '--serial', 'type=sink,stdin', '--serial', 'type=sink,num=2,stdin', '$K'], status: 1, error: 'already connected to standard input'},
		],
	},
];
