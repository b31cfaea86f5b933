import {InvalidConfigError} from '../../errors.js';
import {checkGuestCid} from '../cids/range.js';
import {listConfigFiles, type ConfigFile} from '../config/files.js';
import {checkArgvSize} from '../config/bounds.js';
import {checkConfigShape} from '../config/validate.js';
import type {VmConfig} from '../config/vm-config.js';
import type {DescriptorAssignment, VmmCommand} from '../vmm/driver.js';

/**
 * Which crosvm command line to speak: `current` is what today's crosvm accepts; `aosp-2022` is the
 * reference launcher's command line for the 2022 Android build, flag for flag.
 */
export type CrosvmDialect = 'current' | 'aosp-2022';

/** The crosvm build a `current` command line is for: some flags exist only on some builds. */
export interface CrosvmTarget {
	os: 'linux' | 'android';
	arch: 'x86_64' | 'aarch64';
}

export interface CrosvmCommandOptions {
	/** The guest's vsock context ID: 3 and up (0-2 are the hypervisor, loopback and host). */
	cid: number;
	/** Default `current`. */
	dialect?: CrosvmDialect;
	/** For dialect `current`; default the host's (`hostTarget()`). Dialect `aosp-2022` is Android's build by definition. */
	target?: CrosvmTarget;
	/** Adds `--socket PATH`, the control socket `crosvm stop` talks to. */
	controlSocket?: string;
	/** Adds the payload report channel: a UART (`/dev/ttyS2` in the guest) on a pipe. */
	payloadChannel?: boolean;
}

const DIALECTS: ReadonlySet<string> = new Set<CrosvmDialect>(['current', 'aosp-2022']);

// sun_path holds 108 bytes including the terminating NUL.
const MAX_SOCKET_PATH_BYTES = 107;

/** The crosvm build that would run on this host. */
export function hostTarget(): CrosvmTarget {
	const os = process.platform === 'android' ? 'android' : 'linux';
	switch (process.arch) {
		case 'x64': {
			return {os, arch: 'x86_64'};
		}

		case 'arm64': {
			return {os, arch: 'aarch64'};
		}

		default: {
			throw new InvalidConfigError('target', `crosvm has no supported build for host architecture ${process.arch}; pass a target`);
		}
	}
}

function checkOptions(options: CrosvmCommandOptions): void {
	const {cid, dialect, controlSocket, payloadChannel} = options;
	checkGuestCid(cid);

	if (dialect !== undefined && !DIALECTS.has(dialect)) {
		throw new InvalidConfigError('dialect', 'must be \'current\' or \'aosp-2022\'');
	}

	if (controlSocket !== undefined) {
		if (typeof controlSocket !== 'string' || controlSocket.length === 0 || controlSocket.includes('\0')) {
			throw new InvalidConfigError('controlSocket', 'must be a non-empty path without NUL bytes');
		}

		if (Buffer.byteLength(controlSocket) > MAX_SOCKET_PATH_BYTES) {
			throw new InvalidConfigError('controlSocket', `is longer than ${MAX_SOCKET_PATH_BYTES} bytes: a Unix socket cannot be bound there`);
		}
	}

	if (payloadChannel !== undefined && typeof payloadChannel !== 'boolean') {
		throw new InvalidConfigError('payloadChannel', 'must be a boolean');
	}
}

function checkTarget(target: CrosvmTarget): void {
	if (typeof target !== 'object' || target === null || (target.os !== 'linux' && target.os !== 'android') || (target.arch !== 'x86_64' && target.arch !== 'aarch64')) {
		throw new InvalidConfigError('target', 'must be {os: \'linux\' | \'android\', arch: \'x86_64\' | \'aarch64\'}');
	}
}

/**
 * The descriptor plan: child descriptors from 3 in the reference's order (indirect files, console,
 * log, failure pipe, bootloader, initrd, each disk, kernel), then the payload channel, last so
 * that it shifts none of the reference's numbers. Shared with other VMMs' drivers (QEMU), which
 * hand over the same files in the same numbering.
 */
export function planDescriptors(files: ConfigFile[], payloadChannel: boolean): DescriptorAssignment[] {
	const beforeFailure = new Set(['indirect', 'console', 'log']);
	const plan: DescriptorAssignment[] = [];
	const add = (entry: ConfigFile | {role: 'failure' | 'payload'; field: string; kind: 'channel'}): void => {
		plan.push('kind' in entry ? {childFd: plan.length + 3, ...entry} : {childFd: plan.length + 3, ...entry, kind: 'file'});
	};

	for (const file of files.filter(file => beforeFailure.has(file.role))) {
		add(file);
	}

	add({role: 'failure', field: 'failure', kind: 'channel'});
	for (const file of files.filter(file => !beforeFailure.has(file.role))) {
		add(file);
	}

	if (payloadChannel) {
		add({role: 'payload', field: 'payload', kind: 'channel'});
	}

	return plan;
}

/** crosvm's `/proc/self/fd/N` path for the child descriptor of `field`. */
function descriptorPath(plan: DescriptorAssignment[], field: string): string {
	const entry = plan.find(entry => entry.field === field);
	if (entry === undefined) {
		throw new Error(`no descriptor for ${field}`);
	}

	return `/proc/self/fd/${entry.childFd}`;
}

/** A crosvm key-value list: `type=file,path=/proc/self/fd/4,hardware=serial,num=1`. */
function keyValues(fields: Array<[string, string | number | boolean]>): string {
	return fields.map(([key, value]) => `${key}=${value}`).join(',');
}

/**
 * An option and its value as separate arguments, the reference's style, except a value that starts
 * with `-`, glued to its flag (`--params=-h`). Before parsing, crosvm splits an argument that starts
 * with `-` at its first `=` (`-x=1` would be torn in two) and rewrites an argument `-h` to `--help`
 * (`prepare_argh_args`, src/main.rs at f1e797a68); its 2022 parser took no separate value starting
 * with `-` (src/crosvm/argument.rs at efdcf90a4). After `--params=` the value survives all three.
 */
function option(flag: string, value: string | number): string[] {
	const text = String(value);
	return text.startsWith('-') ? [`${flag}=${text}`] : [flag, text];
}

interface SerialDevice {
	/** A child descriptor path, or none for a sink. */
	path: string | undefined;
	hardware: 'serial' | 'virtio-console';
	num: number;
}

/** The reference's five serial devices, then the payload channel (`/dev/ttyS2`) when asked for. */
function serialDevices(plan: DescriptorAssignment[]): SerialDevice[] {
	const pathOf = (field: string): string | undefined => plan.some(entry => entry.field === field) ? descriptorPath(plan, field) : undefined;
	const console = pathOf('consoleOutput');
	const payload = pathOf('payload');
	return [
		// ttyS0: bootloader output and the kernel's early console.
		{path: console, hardware: 'serial', num: 1},
		// ttyS1: the failure reason.
		{path: pathOf('failure'), hardware: 'serial', num: 2},
		// hvc0: the console kmsg goes to.
		{path: console, hardware: 'virtio-console', num: 1},
		// hvc1: androidboot.console, unused.
		{path: undefined, hardware: 'virtio-console', num: 2},
		// hvc2: the log (logcat).
		{path: pathOf('logOutput'), hardware: 'virtio-console', num: 3},
		// ttyS2: payload reports (docs/payload-protocol.md).
		...(payload === undefined ? [] : [{path: payload, hardware: 'serial', num: 3} as const]),
	];
}

function serialValue({path, hardware, num}: SerialDevice): string {
	return keyValues(path === undefined ? [['type', 'sink'], ['hardware', hardware], ['num', num]] : [['type', 'file'], ['path', path], ['hardware', hardware], ['num', num]]);
}

/** 3 virtio-console devices + vsock, plus each disk: 2 MiB per virtio device, as the reference. */
function swiotlbMib(config: VmConfig): number {
	return 2 * (4 + (config.disks?.length ?? 0));
}

/**
 * The argv, in the reference's order for both dialects. `target` is undefined for `aosp-2022`,
 * whose build (Android's, 2022) knows all the flags the reference uses.
 */
function buildArgs(config: VmConfig, plan: DescriptorAssignment[], options: CrosvmCommandOptions, target: CrosvmTarget | undefined): string[] {
	const aosp = target === undefined;
	const args = ['--extended-status', 'run', '--disable-sandbox'];
	args.push(...(aosp ? ['--cid', String(options.cid)] : ['--vsock', keyValues([['cid', options.cid]])]));
	if (options.controlSocket !== undefined) {
		args.push(...option('--socket', options.controlSocket));
	}

	if (config.protected) {
		args.push('--protected-vm');
		// Current x86_64 builds no longer know --swiotlb; there is no protected KVM there anyway.
		if (aosp || target.arch === 'aarch64') {
			args.push('--swiotlb', String(swiotlbMib(config)));
		}
	}

	if (config.memoryMib !== undefined) {
		args.push('--mem', String(config.memoryMib));
	}

	if (config.cpus !== undefined) {
		args.push('--cpus', String(config.cpus));
	}

	if (config.cpuAffinity !== undefined) {
		args.push('--cpu-affinity', config.cpuAffinity);
	}

	// 2022: one comma-joined value; current: one name per flag, no comma splitting.
	const profiles = config.taskProfiles ?? [];
	for (const value of aosp ? (profiles.length > 0 ? [profiles.join(',')] : []) : profiles) {
		args.push(...option('--task-profiles', value));
	}

	for (const device of serialDevices(plan)) {
		args.push(...(aosp ? [`--serial=${serialValue(device)}`] : ['--serial', serialValue(device)]));
	}

	if (config.bootloader !== undefined) {
		args.push('--bios', descriptorPath(plan, 'bootloader'));
	}

	if (config.initrd !== undefined) {
		args.push('--initrd', descriptorPath(plan, 'initrd'));
	}

	if (config.params !== undefined) {
		args.push(...option('--params', config.params));
	}

	for (const [index, disk] of (config.disks ?? []).entries()) {
		const path = descriptorPath(plan, `disks[${index}].image`);
		args.push(...(aosp ? [disk.writable ? '--rwdisk' : '--disk', path] : ['--block', keyValues([['path', path], ['ro', !disk.writable]])]));
	}

	// Last: the 2022 parser wanted the kernel after every option.
	if (config.kernel !== undefined) {
		args.push(descriptorPath(plan, 'kernel'));
	}

	return args;
}

/** A command whose argv `execve` will take (see `checkArgvSize`). */
function checkedCommand(args: string[], fds: DescriptorAssignment[]): VmmCommand {
	checkArgvSize(args);
	return {args, fds};
}

/**
 * The crosvm command line for one VM: the argv without crosvm's own path, and the descriptor plan
 * (which file becomes which child descriptor; every `/proc/self/fd/N` in argv names child fd N).
 * Pure: it opens nothing (`validateConfig` checks the files, `openDescriptors` opens them). Throws
 * `InvalidConfigError` for a config the reference refuses and for what the target build rejects.
 * See docs/command-line.md.
 */
export function crosvmCommand(config: VmConfig, options: CrosvmCommandOptions): VmmCommand {
	checkConfigShape(config);
	checkOptions(options);
	const dialect = options.dialect ?? 'current';
	const plan = planDescriptors(listConfigFiles(config), options.payloadChannel ?? false);
	if (dialect === 'aosp-2022') {
		return checkedCommand(buildArgs(config, plan, options, undefined), plan);
	}

	const target = options.target ?? hostTarget();
	checkTarget(target);
	if (config.taskProfiles !== undefined && config.taskProfiles.length > 0 && target.os !== 'android') {
		throw new InvalidConfigError(
			'taskProfiles',
			`task profiles are an Android feature: crosvm for ${target.os} has no --task-profiles flag and would refuse to start; leave taskProfiles empty or target an android build`,
		);
	}

	return checkedCommand(buildArgs(config, plan, options, target), plan);
}
