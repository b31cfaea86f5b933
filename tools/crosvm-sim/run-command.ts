import {CpuAffinityError, parseCpuAffinity} from 'vmwarden/cpu-affinity';
import {flagValue, flagValues, parseCommand, type CommandSpec, type FlagSpec} from './arguments.js';
import type {SimBuild} from './build.js';
import {diskParser, parseBlockCurrent, type DiskParameters} from './disk-options.js';
import {ValueError} from './failures.js';
import {parseKeyValues} from './key-values.js';
import {log} from './log.js';
import {parseRustUnsigned} from './numbers.js';
import {serialParser, type SerialParameters} from './serial-options.js';
import {formatUsage} from './usage.js';

/** What `crosvm run` was asked to do, once its arguments parsed. */
export interface RunCommand {
	kernel?: string;
	bios?: string;
	initrd?: string;
	params: string[];
	memoryMib?: number;
	cpus?: number;
	cid?: number;
	vsockCid?: number;
	disks: DiskParameters[];
	serials: SerialParameters[];
	socket?: string;
	/** The protection-mode flags given (`--protected-vm`, ...): at most one is allowed. */
	protectionModes: string[];
	swiotlbMib?: number;
	taskProfiles: string[];
}

function affinity(text: string): string {
	try {
		parseCpuAffinity(text);
	} catch (error) {
		if (error instanceof CpuAffinityError) {
			throw new ValueError(error.message);
		}

		throw error;
	}

	return text;
}

function currentMemory(text: string): number | undefined {
	return parseKeyValues(text, {keys: [['size', {kind: 'unsigned', bits: 64}]]})['size'] as number | undefined;
}

function currentCpus(text: string): number | undefined {
	return parseKeyValues(text, {
		keys: [
			['num-cores', {kind: 'unsigned', bits: 64}],
			['clusters', {kind: 'list'}],
			['core-types', {kind: 'list'}],
			['boot-cpu', {kind: 'unsigned', bits: 64}],
			['freq-domains', {kind: 'list'}],
			['sve', {kind: 'list'}],
		],
	})['num-cores'] as number | undefined;
}

function currentVsock(text: string): number {
	return parseKeyValues(text, {
		keys: [
			['cid', {kind: 'unsigned', bits: 64}],
			['device', {kind: 'string'}],
			['max-queue-sizes', {kind: 'list'}],
		],
		required: ['cid'],
	})['cid'] as number;
}

const u64 = (text: string): number => parseRustUnsigned(text, 64);

/** The `crosvm run` flags of one build: what it accepts, and how each value parses. */
export function runFlags(build: SimBuild): FlagSpec[] {
	const legacy = build.dialect === 'aosp-2022';
	const flags: FlagSpec[] = [
		{long: '--bios', kind: 'single', description: 'path to a bootloader to run instead of a kernel'},
		{long: '--initrd', short: '-i', kind: 'single', description: 'initial ramdisk to load'},
		{long: '--params', short: '-p', kind: 'repeated', description: 'extra kernel or plugin command line arguments'},
		{long: '--mem', short: '-m', kind: 'single', parse: legacy ? u64 : currentMemory, description: legacy ? 'memory in MiB' : 'memory in MiB: N or size=N'},
		{long: '--cpus', short: '-c', kind: 'single', parse: legacy ? u64 : currentCpus, description: legacy ? 'number of vCPUs' : 'vCPUs: N or num-cores=N[,...]'},
		{long: '--cpu-affinity', kind: 'single', parse: affinity, description: 'host CPUs for the vCPUs: 0,1-3 or 0=0:1=1-2'},
		{long: '--cid', kind: 'single', parse: u64, description: legacy ? 'context ID for the virtual socket' : '(deprecated: --vsock) context ID for the virtual socket'},
		{long: '--disk', short: '-d', kind: 'repeated', parse: diskParser(build, true), description: 'read-only disk image'},
		{long: '--rwdisk', kind: 'repeated', parse: diskParser(build, false), description: 'writable disk image'},
		{long: '--serial', kind: 'repeated', parse: serialParser(build), description: 'serial device: type=,hardware=,num=,path=,...'},
		{long: '--socket', short: '-s', kind: 'single', description: 'path for the control socket'},
		{long: '--disable-sandbox', kind: 'switch', description: 'run all devices in one process, without a sandbox'},
		{long: '--protected-vm', kind: 'switch', description: 'run as a protected VM (pKVM)'},
		{long: '--protected-vm-without-firmware', kind: 'switch', description: 'protected VM without firmware'},
	];
	if (!legacy) {
		flags.push(
			{long: '--vsock', kind: 'single', parse: currentVsock, description: 'virtio-vsock: cid=N[,device=PATH]'},
			{long: '--block', kind: 'repeated', parse: (text: string) => parseBlockCurrent(text), description: 'block device: [path=]PATH[,ro][,root][,sparse=B][,direct=B][,id=S]'},
			{long: '--protected-vm-with-firmware', kind: 'single', description: 'protected VM with this firmware'},
			{long: '--unprotected-vm-with-firmware', kind: 'single', description: 'unprotected VM with this firmware'},
		);
	}

	// --swiotlb: everywhere in 2022, aarch64 only today.
	if (legacy || build.arch === 'aarch64') {
		flags.push({long: '--swiotlb', kind: 'single', parse: u64, description: 'size of the bounce buffer in MiB'});
	}

	// --task-profiles: Android builds only; comma-split in 2022, one name per flag today.
	if (build.os === 'android') {
		flags.push(legacy
			? {long: '--task-profiles', kind: 'single', parse: (text: string) => text.split(','), description: 'comma-separated task profiles for crosvm threads'}
			: {long: '--task-profiles', kind: 'repeated', description: 'a task profile for crosvm threads (repeatable)'});
	}

	return flags;
}

export function runSpec(build: SimBuild): CommandSpec {
	const flags = runFlags(build);
	const legacy = build.dialect === 'aosp-2022';
	return {
		flags,
		positionals: ['KERNEL'],
		requiredPositionals: 0,
		positionalEndsOptions: legacy,
		usage: formatUsage('crosvm run', legacy ? '[<options>] [KERNEL]' : '[KERNEL] [<options>]', 'Start a new crosvm instance', flags),
	};
}

/** Parses `crosvm run`'s arguments for a build; throws `ArgumentError` or `HelpRequest`. */
export function parseRunCommand(build: SimBuild, args: readonly string[]): RunCommand {
	const parsed = parseCommand(runSpec(build), args);
	const command: RunCommand = {
		params: flagValues(parsed, '--params'),
		disks: [...flagValues<DiskParameters>(parsed, '--disk'), ...flagValues<DiskParameters>(parsed, '--rwdisk'), ...flagValues<DiskParameters>(parsed, '--block')],
		serials: flagValues(parsed, '--serial'),
		protectionModes: ['--protected-vm', '--protected-vm-without-firmware', '--protected-vm-with-firmware', '--unprotected-vm-with-firmware'].filter(flag => parsed.flags.has(flag)),
		taskProfiles: flagValues<string | string[]>(parsed, '--task-profiles').flat(),
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

	if (command.cid !== undefined && build.dialect === 'current') {
		log('warn', '`--cid` is deprecated, use `--vsock cid=N` instead');
	}

	return command;
}
