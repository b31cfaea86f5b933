import {flagValue, flagValues, parseCommand, type CommandSpec, type FlagSpec} from './arguments.js';
import type {SimBuild} from './build.js';
import {parseCpuAffinity} from './cpu-affinity.js';
import {diskParser, parseDisk, type DiskParameters} from './disk-options.js';
import {parseKeyValues, type KeyValueSchema} from './key-values.js';
import {parseRustUnsigned} from './numbers.js';
import {parseRunCommand2022} from './run-command-2022.js';
import type {RunCommand} from './run-config.js';
import {serialParser} from './serial-options.js';
import {formatUsage} from './usage.js';

const MEM_SCHEMA: KeyValueSchema = {keys: [['size', {kind: 'unsigned', bits: 64}]]};

const AUTO_SCHEMA: KeyValueSchema = {keys: [['auto', {kind: 'bool'}]]};

/** `CpuOptions` of src/crosvm/config.rs at f1e797a68: `core-types` is x86_64's, `mte` and `sve` aarch64's. */
function cpusSchema(arch: SimBuild['arch']): KeyValueSchema {
	const cpuSets = {kind: 'seq', element: {kind: 'cpuset'}} as const;
	return {
		keys: [
			['num-cores', {kind: 'unsigned', bits: 64}],
			['clusters', cpuSets],
			...(arch === 'x86_64' ? [['core-types', {kind: 'struct', schema: {keys: [['atom', {kind: 'cpuset'}], ['core', {kind: 'cpuset'}]], required: ['atom', 'core']}}] as const] : []),
			['boot-cpu', {kind: 'unsigned', bits: 64}],
			['freq-domains', cpuSets],
			...(arch === 'aarch64' ? [['mte', {kind: 'struct', schema: AUTO_SCHEMA}] as const, ['sve', {kind: 'struct', schema: AUTO_SCHEMA}] as const] : []),
		],
	};
}

/** `VsockConfig` of devices/src/virtio/vsock/sys/linux.rs at f1e797a68. */
const VSOCK_SCHEMA: KeyValueSchema = {
	keys: [
		['cid', {kind: 'unsigned', bits: 64}],
		['device', {kind: 'string'}],
		['max-queue-sizes', {kind: 'seq', element: {kind: 'unsigned', bits: 16}, length: 3}],
	],
	required: ['cid'],
};

const u64 = (text: string): number => parseRustUnsigned(text, 64);

/**
 * Today's `crosvm run` flags, from `RunCommand` in src/crosvm/cmdline.rs at f1e797a68: what the
 * build accepts, and how each value parses. Only the flags a supervisor uses are known.
 */
export function runFlags(build: SimBuild): FlagSpec[] {
	const cpus = cpusSchema(build.arch);
	const flags: FlagSpec[] = [
		{long: '--bios', kind: 'single', description: 'path to a bootloader to run instead of a kernel'},
		{long: '--block', short: '-b', kind: 'repeated', parse: (text: string) => parseDisk(text, 'current'), description: 'block device: [path=]PATH[,ro][,root][,sparse=B][,direct=B][,id=S]'},
		{long: '--cid', kind: 'single', parse: u64, description: '(DEPRECATED): Use --vsock. context ID for virtual sockets'},
		{long: '--cpu-affinity', kind: 'single', parse: (text: string) => parseCpuAffinity(text, 'current'), description: 'host CPUs for the vCPUs: 0,1-3 or 0=0:1=1-2'},
		{long: '--cpus', short: '-c', kind: 'single', parse: (text: string) => parseKeyValues(text, cpus)['num-cores'], description: 'vCPUs: N or num-cores=N[,...]'},
		{long: '--disable-sandbox', kind: 'switch', description: 'run all devices in one process, without a sandbox'},
		{long: '--disk', short: '-d', kind: 'repeated', parse: diskParser(build, false), description: '(DEPRECATED): Use --block. read-only disk image'},
		{long: '--initrd', short: '-i', kind: 'single', description: 'initial ramdisk to load'},
		{long: '--mem', short: '-m', kind: 'single', parse: (text: string) => parseKeyValues(text, MEM_SCHEMA)['size'], description: 'memory in MiB: N or size=N'},
		{long: '--params', short: '-p', kind: 'repeated', description: 'extra kernel command line arguments'},
		{long: '--protected-vm', kind: 'switch', description: 'prevent host access to guest memory'},
		{long: '--protected-vm-with-firmware', kind: 'single', description: 'protected VM with this firmware'},
		{long: '--protected-vm-without-firmware', kind: 'switch', description: 'protected VM without firmware'},
		{long: '--rwdisk', short: '-r', kind: 'repeated', parse: diskParser(build, true), description: '(DEPRECATED): Use --block. writable disk image'},
		{long: '--serial', kind: 'repeated', parse: serialParser(build), description: 'serial device: type=,hardware=,num=,path=,...'},
		{long: '--socket', short: '-s', kind: 'single', description: 'path for the control socket'},
		{long: '--syslog-tag', kind: 'single', description: '(DEPRECATED): Use --syslog-tag before "run".'},
		{long: '--unprotected-vm-with-firmware', kind: 'single', description: 'unprotected VM with this firmware'},
		{long: '--vsock', kind: 'single', parse: (text: string) => parseKeyValues(text, VSOCK_SCHEMA)['cid'], description: 'virtio-vsock: cid=N[,device=PATH]'},
	];
	if (build.arch === 'aarch64') {
		flags.push({long: '--swiotlb', kind: 'single', parse: u64, description: 'size of the bounce buffer in MiB'});
	}

	// Android builds only; repeatable, one name per flag: argh does not split at commas.
	if (build.os === 'android') {
		flags.push({long: '--task-profiles', kind: 'repeated', description: 'a task profile for crosvm threads (repeatable)'});
	}

	return flags.sort((a, b) => a.long.localeCompare(b.long));
}

export function runSpec(build: SimBuild): CommandSpec {
	const flags = runFlags(build);
	return {flags, positionals: ['KERNEL'], requiredPositionals: 0, usage: formatUsage('crosvm run', '[KERNEL] [<options>]', 'Start a new crosvm instance', flags)};
}

const PROTECTION_FLAGS = ['--protected-vm', '--protected-vm-without-firmware', '--protected-vm-with-firmware', '--unprotected-vm-with-firmware'];

/** Parses `crosvm run`'s arguments for a build; throws `ArgumentError` or `HelpRequest`. */
export function parseRunCommand(build: SimBuild, args: readonly string[]): RunCommand {
	if (build.dialect === 'aosp-2022') {
		return parseRunCommand2022(build, args);
	}

	const parsed = parseCommand(runSpec(build), args);
	const deprecatedDisks = parsed.flags.has('--disk') || parsed.flags.has('--rwdisk');
	const command: RunCommand = {
		params: flagValues(parsed, '--params'),
		disks: [...flagValues<DiskParameters>(parsed, '--disk'), ...flagValues<DiskParameters>(parsed, '--rwdisk'), ...flagValues<DiskParameters>(parsed, '--block')],
		deprecatedDisks,
		serials: flagValues(parsed, '--serial'),
		protectionModes: PROTECTION_FLAGS.filter(flag => parsed.flags.has(flag)),
		taskProfiles: flagValues<string>(parsed, '--task-profiles'),
		warnings: [],
	};
	const optional = {
		kernel: parsed.positionals[0],
		bios: flagValue<string>(parsed, '--bios'),
		initrd: flagValue<string>(parsed, '--initrd'),
		memoryMib: flagValue<number>(parsed, '--mem'),
		cpus: flagValue<number>(parsed, '--cpus'),
		cid: flagValue<number>(parsed, '--cid'),
		vsockCid: flagValue<number>(parsed, '--vsock'),
		socket: flagValue<string>(parsed, '--socket'),
		swiotlbMib: flagValue<number>(parsed, '--swiotlb'),
	};
	for (const [key, value] of Object.entries(optional)) {
		if (value !== undefined) {
			Object.assign(command, {[key]: value});
		}
	}

	// src/main.rs at f1e797a68 warns for `run --syslog-tag`; `--cid` is deprecated only in its help.
	const tag = flagValue<string>(parsed, '--syslog-tag');
	if (tag !== undefined) {
		command.warnings.push(`\`crosvm run --syslog-tag\` is deprecated; please use \`crosvm --syslog-tag="${tag}" run\` instead`);
	}

	return command;
}
