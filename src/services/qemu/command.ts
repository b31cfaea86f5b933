import {constants, fstatSync} from 'node:fs';
import {checkGuestCid} from '../cids/range.js';
import {InvalidConfigError} from '../../errors.js';
import {listConfigFiles} from '../config/files.js';
import {planDescriptors} from '../crosvm/command.js';
import {descriptorFlags} from '../config/file-access.js';
import {checkArgvSize} from '../config/bounds.js';
import {checkConfigShape} from '../config/validate.js';
import type {FileSource, VmConfig} from '../config/vm-config.js';
import type {DescriptorAssignment, VmmCommand} from '../vmm/driver.js';

/** A QEMU accelerator, tried in the order given (`-accel kvm -accel tcg` falls back to TCG). */
export type QemuAccelerator = 'kvm' | 'tcg' | 'xen' | 'hvf' | 'whpx';

export interface QemuCommandOptions {
	/** The guest's context ID: named in the VM's name, and the vsock CID with `vsock`. */
	cid: number;
	/** Where QEMU serves QMP (the driver's graceful stop): a Unix socket path. */
	qmpSocket: string;
	/** Where QEMU logs the shutdown trace the exit reason is read from. */
	eventLog: string;
	/** Adds the payload report channel: the third UART (`/dev/ttyS2` in the guest). */
	payloadChannel: boolean;
	/** Default `['kvm', 'tcg']`. */
	accelerators?: QemuAccelerator[];
	/** Adds `vhost-vsock-pci` with the CID (needs the host's `/dev/vhost-vsock`). Default false. */
	vsock?: boolean;
	/** Appended to the command line as given (for example `['-cpu', 'max']`). */
	extraArgs?: string[];
}

const ACCELERATORS: ReadonlySet<string> = new Set<QemuAccelerator>(['kvm', 'tcg', 'xen', 'hvf', 'whpx']);

// sun_path holds 108 bytes including the terminating NUL.
const MAX_SOCKET_PATH_BYTES = 107;

// O_ACCMODE (Node does not export it): the access mode bits of open(2) flags.
const ACCESS_MODE_MASK = 3;

/** The trace event whose `reason=` tells how the guest left (see `qemuExitReason`). */
export const SHUTDOWN_TRACE_EVENT = 'qemu_system_shutdown_request';

/** A value inside a QEMU option list: a comma is written twice. */
function optionValue(value: string): string {
	return value.replaceAll(',', ',,');
}

/** A QEMU option list from key-value pairs. */
function optionList(fields: Array<[string, string | number]>): string {
	return fields.map(([key, value]) => `${key}=${optionValue(String(value))}`).join(',');
}

function sourceDescriptor(source: FileSource): number | undefined {
	return typeof source === 'string' ? undefined : typeof source === 'number' ? source : source.fd;
}

/**
 * What QEMU should do with one inherited descriptor. QEMU `open()`s the paths it is given, so a
 * `/proc/self/fd/N` path re-opens the file (and fails on a socket, as Node's channels are). Instead:
 * `-add-fd` puts the descriptor in an fd set and `/dev/fdset/S` makes QEMU `dup()` it, which works
 * when its access mode is exactly the one QEMU asks for; a socket goes to a socket chardev by number.
 */
type DescriptorUse = 'fdset' | 'socket' | 'reopen';

function accessMode(entry: DescriptorAssignment & {kind: 'file'}): number {
	const caller = sourceDescriptor(entry.source);
	if (caller === undefined) {
		// vmwarden opens the path itself: read O_RDONLY, readWrite O_RDWR, append O_WRONLY.
		return entry.access === 'read' ? constants.O_RDONLY : entry.access === 'readWrite' ? constants.O_RDWR : constants.O_WRONLY;
	}

	const flags = descriptorFlags(caller);
	if (flags === undefined) {
		throw new InvalidConfigError(entry.field, `descriptor ${caller} is not open`);
	}

	return flags & ACCESS_MODE_MASK;
}

function isSocket(entry: DescriptorAssignment & {kind: 'file'}): boolean {
	const caller = sourceDescriptor(entry.source);
	if (caller === undefined) {
		return false;
	}

	try {
		return fstatSync(caller).isSocket();
	} catch {
		throw new InvalidConfigError(entry.field, `descriptor ${caller} is not open`);
	}
}

/** How QEMU takes a file it writes (console, log) or a disk, given the access mode QEMU opens it with. */
function descriptorUse(entry: DescriptorAssignment & {kind: 'file'}, qemuAccess: number): DescriptorUse {
	if (isSocket(entry)) {
		return 'socket';
	}

	return accessMode(entry) === qemuAccess ? 'fdset' : 'reopen';
}

class CommandBuilder {
	readonly args: string[] = [];

	constructor(readonly plan: DescriptorAssignment[]) {}

	entry(field: string): DescriptorAssignment | undefined {
		return this.plan.find(entry => entry.field === field);
	}

	/** Adds the descriptor to fd set `childFd` and returns the path QEMU dup()s it from. */
	fdset(childFd: number): string {
		this.args.push('-add-fd', `fd=${childFd},set=${childFd}`);
		return `/dev/fdset/${childFd}`;
	}

	/** A chardev that discards what the guest writes (crosvm's sink). */
	nullChardev(id: string): void {
		this.args.push('-chardev', `null,${optionList([['id', id]])}`);
	}

	/** A chardev `id` for the output file or channel of `field`, or a null one when there is none. */
	chardev(id: string, field: string, mux = false): void {
		const entry = this.entry(field);
		const muxed: Array<[string, string]> = mux ? [['mux', 'on']] : [];
		if (entry === undefined) {
			this.nullChardev(id);
			return;
		}

		if (entry.kind === 'channel' && entry.role === 'failure') {
			// spawnVmm hands the failure channel over as a file it opened O_WRONLY|O_APPEND in the VM's
			// directory (src/services/vmm/spawn/spawner-source.ts), not a socket: QEMU dup()s it.
			this.args.push('-chardev', `file,${optionList([['id', id], ['path', this.fdset(entry.childFd)], ['append', 'on'], ...muxed])}`);
			return;
		}

		if (entry.kind === 'channel') {
			// Node's extra stdio pipes are socket pairs: QEMU takes the connected socket as it is.
			this.args.push('-chardev', `socket,${optionList([['id', id], ['fd', entry.childFd], ...muxed])}`);
			return;
		}

		switch (descriptorUse(entry, constants.O_WRONLY)) {
			case 'socket': {
				this.args.push('-chardev', `socket,${optionList([['id', id], ['fd', entry.childFd], ...muxed])}`);
				break;
			}

			case 'fdset': {
				this.args.push('-chardev', `file,${optionList([['id', id], ['path', this.fdset(entry.childFd)], ['append', 'on'], ...muxed])}`);
				break;
			}

			case 'reopen': {
				// Open for reading too: QEMU's file chardev wants O_WRONLY, so it re-opens (appending).
				this.args.push('-chardev', `file,${optionList([['id', id], ['path', `/proc/self/fd/${entry.childFd}`], ['append', 'on'], ...muxed])}`);
				break;
			}
		}
	}

	disk(field: string, writable: boolean): void {
		const entry = this.entry(field);
		if (entry?.kind !== 'file') {
			throw new Error(`no descriptor for ${field}`);
		}

		const use = descriptorUse(entry, writable ? constants.O_RDWR : constants.O_RDONLY);
		if (use === 'socket') {
			throw new InvalidConfigError(field, 'is a socket: QEMU needs a file or a block device for a disk');
		}

		const path = use === 'fdset' ? this.fdset(entry.childFd) : `/proc/self/fd/${entry.childFd}`;
		// auto-read-only=off: else QEMU re-opens a writable image read-only until the guest writes,
		// which an fd set holding only the read-write descriptor cannot serve.
		this.args.push('-drive', optionList([['file', path], ['format', 'raw'], ['if', 'virtio'], ['readonly', writable ? 'off' : 'on'], ['auto-read-only', 'off']]));
	}

	/** QEMU's kernel loader opens the path: `/proc/self/fd/N` re-opens the (regular) file. */
	loaderPath(field: string): string {
		const entry = this.entry(field);
		if (entry?.kind !== 'file') {
			throw new Error(`no descriptor for ${field}`);
		}

		if (isSocket(entry)) {
			throw new InvalidConfigError(field, 'is a socket: QEMU loads the kernel and initrd from files');
		}

		return `/proc/self/fd/${entry.childFd}`;
	}
}

function checkSupported(config: VmConfig): void {
	if (config.protected === true) {
		throw new InvalidConfigError('protected', 'QEMU runs no protected VMs (that is pKVM under crosvm): use the crosvm driver, or leave protected unset');
	}

	if (config.bootloader !== undefined) {
		throw new InvalidConfigError('bootloader', 'the QEMU driver boots a kernel directly: crosvm\'s bootloader (--bios) has no QEMU counterpart here; give a kernel instead');
	}

	if (config.taskProfiles !== undefined && config.taskProfiles.length > 0) {
		throw new InvalidConfigError('taskProfiles', 'task profiles are applied by Android\'s crosvm: QEMU has none; leave taskProfiles empty');
	}

	if (config.cpuAffinity !== undefined) {
		throw new InvalidConfigError('cpuAffinity', 'the QEMU driver does not pin vCPU threads: leave cpuAffinity unset (or pin QEMU as a whole from outside)');
	}
}

function checkOptions(options: QemuCommandOptions): void {
	const {cid, qmpSocket, accelerators, extraArgs} = options;
	checkGuestCid(cid);

	if (Buffer.byteLength(qmpSocket) > MAX_SOCKET_PATH_BYTES) {
		throw new InvalidConfigError('tempRoot', `the QMP socket ${qmpSocket} is longer than ${MAX_SOCKET_PATH_BYTES} bytes: a Unix socket cannot be bound there; use a shorter tempRoot`);
	}

	if (accelerators !== undefined && (!Array.isArray(accelerators) || accelerators.length === 0 || accelerators.some(accelerator => !ACCELERATORS.has(accelerator)))) {
		throw new InvalidConfigError('accelerators', `must be a non-empty list of ${[...ACCELERATORS].join(', ')}`);
	}

	if (extraArgs !== undefined && (!Array.isArray(extraArgs) || extraArgs.some(argument => typeof argument !== 'string' || argument.includes('\0')))) {
		throw new InvalidConfigError('extraArgs', 'must be a list of strings without NUL bytes');
	}
}

/**
 * The QEMU (`qemu-system-x86_64`) command line for one VM, with the same descriptor plan as
 * crosvm's: console on the first UART (and on `hvc0`), the failure channel on the second, the
 * payload channel on the third, the log on `hvc2`, virtio disks in order, the kernel and initrd.
 * Guest resets and panics end QEMU (`-action reboot=shutdown,panic=shutdown` with `pvpanic`);
 * the shutdown trace in `eventLog` tells them apart afterwards. Throws `InvalidConfigError` naming
 * the field for what QEMU cannot do. See docs/qemu.md.
 */
export function qemuCommand(config: VmConfig, options: QemuCommandOptions): VmmCommand {
	checkConfigShape(config);
	checkOptions(options);
	checkSupported(config);
	const plan = planDescriptors(listConfigFiles(config), options.payloadChannel);
	const builder = new CommandBuilder(plan);
	const {args} = builder;
	args.push('-nodefaults', '-no-user-config', '-display', 'none', '-name', `vmwarden-${options.cid}`);
	for (const accelerator of options.accelerators ?? ['kvm', 'tcg']) {
		args.push('-accel', accelerator);
	}

	if (config.memoryMib !== undefined) {
		args.push('-m', String(config.memoryMib));
	}

	if (config.cpus !== undefined) {
		args.push('-smp', String(config.cpus));
	}

	// Serial devices: ttyS0 console, ttyS1 failure reason, ttyS2 payload reports. The console is
	// multiplexed because hvc0 shows it too, as with crosvm.
	const hasConsole = config.consoleOutput !== undefined;
	builder.chardev('vmw-console', 'consoleOutput', hasConsole);
	builder.chardev('vmw-failure', 'failure');
	args.push('-serial', hasConsole ? 'chardev:vmw-console' : 'null', '-serial', 'chardev:vmw-failure');
	if (options.payloadChannel) {
		builder.chardev('vmw-payload', 'payload');
		args.push('-serial', 'chardev:vmw-payload');
	}

	// virtio consoles: hvc0 the console, hvc1 unused, hvc2 the log (crosvm's layout).
	if (!hasConsole) {
		builder.nullChardev('vmw-hvc0');
	}

	builder.nullChardev('vmw-hvc1');
	builder.chardev('vmw-log', 'logOutput');

	args.push('-device', 'virtio-serial-pci,id=vmw-virtio-serial');
	for (const chardev of [hasConsole ? 'vmw-console' : 'vmw-hvc0', 'vmw-hvc1', 'vmw-log']) {
		args.push('-device', `virtconsole,chardev=${chardev}`);
	}

	for (const [index, disk] of (config.disks ?? []).entries()) {
		builder.disk(`disks[${index}].image`, disk.writable);
	}

	args.push('-kernel', builder.loaderPath('kernel'));
	if (config.initrd !== undefined) {
		args.push('-initrd', builder.loaderPath('initrd'));
	}

	if (config.params !== undefined) {
		args.push('-append', config.params);
	}

	if (options.vsock === true) {
		args.push('-device', `vhost-vsock-pci,guest-cid=${options.cid}`);
	}

	// The memory balloon (QMP `balloon`, `query-balloon`), only when asked for: crosvm has one by
	// default, QEMU none.
	if (config.balloon === true) {
		args.push('-device', 'virtio-balloon-pci,id=vmw-balloon');
	}

	// How the guest leaves: a reset or a panic ends QEMU instead of rebooting or pausing it, and the
	// shutdown request (with its cause) is traced to eventLog.
	args.push('-device', 'pvpanic', '-action', 'reboot=shutdown,panic=shutdown');
	args.push('-D', options.eventLog, '-trace', SHUTDOWN_TRACE_EVENT);
	// QMP, for graceful stop (system_powerdown).
	args.push('-chardev', `socket,${optionList([['id', 'vmw-qmp'], ['path', options.qmpSocket], ['server', 'on'], ['wait', 'off']])}`, '-mon', 'chardev=vmw-qmp,mode=control');
	args.push(...(options.extraArgs ?? []));
	checkArgvSize(args);
	return {args, fds: plan};
}
