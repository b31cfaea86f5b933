import type {DeathReason} from '../death/reason.js';
import type {VmmEnvironment} from './vmm-environment.js';
import type {FileSource, VmConfig} from '../config/vm-config.js';
import type {BalloonStats} from '../control/balloon.js';

/** What a child descriptor is for. */
export type DescriptorRole = 'indirect' | 'console' | 'log' | 'failure' | 'payload' | 'bootloader' | 'initrd' | 'disk' | 'kernel';

/** How vmwarden opens a path it is given for a role. */
export type FileAccess = 'read' | 'readWrite' | 'append';

/**
 * One descriptor the VMM inherits. `childFd` is the number it has in the child (3, 4, ...: the
 * position in execa's `stdio` array); the plan is contiguous from 3 and sorted by `childFd`.
 */
export type DescriptorAssignment =
	| {childFd: number; role: DescriptorRole; field: string; kind: 'file'; source: FileSource; access: FileAccess}
	/** A channel vmwarden reads: the failure UART or the payload channel. */
	| {childFd: number; role: 'failure' | 'payload'; field: string; kind: 'channel'};

/** The VMM's command line and descriptor plan, without the VMM's own path. */
export interface VmmCommand {
	args: string[];
	fds: DescriptorAssignment[];
}

export interface VmmCommandOptions {
	cid: number;
	/**
	 * The VM's private temporary directory (0700), for the VMM's sockets and scratch files. Its path
	 * only: the spawner process makes it with the spawn, after `command` (unless captured outputs
	 * needed it earlier), so `command` must not create anything in it.
	 */
	tempDir: string;
	/** Where the control socket goes, when the driver uses one. */
	controlSocket?: string;
	/** Whether to add the payload report channel. */
	payloadChannel: boolean;
}

export interface VmmExit {
	/** The exit status, when the VMM exited. */
	exitCode: number | undefined;
	/** The signal, when the VMM died by one. */
	signal: NodeJS.Signals | undefined;
}

/** What a driver may read besides the exit itself. */
export interface VmmExitContext {
	/** The VM's temporary directory, still there. */
	tempDir: string;
	/** The last bytes the VMM wrote to stderr, when the caller has them. */
	stderrTail?: string;
}

export interface VmmStopContext {
	/** The VMM's binary as it was found (on the host's PATH, for a bare name) and spawned. */
	vmmPath: string;
	/** The environment of whatever the driver runs for it (`crosvm stop`): the VM's `vmmEnvironment`. */
	environment: VmmEnvironment;
	tempDir: string;
	pid: number;
	controlSocket: string | undefined;
	/** Aborted once nobody waits for the request (the VM died meanwhile): what it runs must end too. */
	signal?: AbortSignal;
}

/** What a control request (suspend, resume, balloon) needs: a stop request's context and the VM's memory. */
export interface VmmControlContext extends VmmStopContext {
	/** The guest memory the config asks for (`memoryMib`), in bytes; absent when it leaves the VMM's default. */
	memoryBytes?: number;
	/** Whether the config asks for a balloon device (`balloon: true`). */
	balloon?: boolean;
}

/**
 * What differs between virtual machine monitors. The VM machine is VMM-agnostic: it asks its driver
 * for a command line, a way to stop, and the meaning of an exit.
 */
export interface VmmDriver {
	/** `crosvm`, `qemu`. */
	readonly name: string;
	/** The executable used when the caller names none (looked up on PATH). */
	readonly defaultPath: string;
	/** Builds the command for one VM; throws `InvalidConfigError` for what this VMM cannot do. */
	command(config: VmConfig, options: VmmCommandOptions): VmmCommand;
	/** Asks the VMM to stop gracefully. Resolves once the request was delivered, not when it exited. */
	requestStop(context: VmmStopContext): Promise<void>;
	/**
	 * The reason for an exit, once the failure text and the hang-up watch have had their say.
	 * `tempDir` still exists here: a driver may read what the VMM left there.
	 */
	exitReason(exit: VmmExit, context: VmmExitContext): DeathReason | Promise<DeathReason>;
	/**
	 * `false` when `exitReason` reads nothing in `tempDir`: the spawner process then removes the
	 * directory as soon as the VMM exited and its outputs were read, and a death costs one round trip
	 * less. Default `true`: the directory stays until the death is decided.
	 */
	readonly exitReadsTempDir?: boolean;
	/**
	 * Pauses the guest's vCPUs; resolves once the VMM acknowledged it. Optional: without it,
	 * `vm.suspend()` rejects with `VmControlUnsupportedError`. Rejects with `VmControlError`.
	 */
	suspend?(context: VmmControlContext): Promise<void>;
	/** Lets a suspended guest run again; resolves once the VMM acknowledged it. */
	resume?(context: VmmControlContext): Promise<void>;
	/** Sets the memory balloon's target size in bytes. */
	setBalloon?(context: VmmControlContext, bytes: number): Promise<void>;
	/** The balloon's size and the guest's memory statistics. */
	balloonStats?(context: VmmControlContext): Promise<BalloonStats>;
}
