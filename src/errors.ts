/**
 * Every error vmwarden throws on purpose, in one place. Each is a `VmwardenError` with a stable
 * `code` (one of `VmwardenErrorCode`), so callers can branch on the kind of failure without parsing
 * messages.
 */
import type {PayloadState} from './services/payload/state.js';

/** Every `code` a `VmwardenError` can carry. */
export type VmwardenErrorCode =
	| 'INVALID_CONFIG'
	| VmSpawnErrorCode
	| 'INVALID_PAYLOAD_TRANSITION'
	| 'VM_STATE'
	| 'QMP_FAILED'
	| 'STOP_REQUEST_FAILED'
	| 'NO_AVAILABLE_CID'
	| 'INSPECTION_FILE'
	| 'SUPERVISOR_SHUT_DOWN'
	| 'CPU_AFFINITY'
	| 'INVALID_DESCRIPTOR_PLAN'
	| 'SUPERVISOR_FAILED'
	| 'STATE_DIR'
	| 'SUPERVISION_GROUP_CLOSED'
	| 'CONFIG_FILE'
	| 'VM_CONTROL_FAILED'
	| 'VM_CONTROL_UNSUPPORTED';

export class VmwardenError extends Error {
	readonly code: VmwardenErrorCode;

	constructor(code: VmwardenErrorCode, message: string, options?: ErrorOptions) {
		super(message, options);
		this.name = new.target.name;
		this.code = code;
	}
}

/** A `VmConfig` (or an option) that vmwarden refuses before anything is spawned. */
export class InvalidConfigError extends VmwardenError {
	/** The offending field, as a path into the config: `memoryMib`, `disks[1].image`. */
	readonly field: string;
	/** Why the field was refused, without the field name. */
	readonly reason: string;

	/** What was refused, which the message names first: the VM config, an option, or an argument. */
	readonly subject: ConfigSubject;

	constructor(field: string, reason: string, options?: ErrorOptions & {subject?: ConfigSubject}) {
		const subject = options?.subject ?? configSubjectOf(field);
		super('INVALID_CONFIG', `Invalid ${subject}: ${field}: ${reason}`, options);
		this.field = field;
		this.reason = reason;
		this.subject = subject;
	}
}

/** What an `InvalidConfigError` is about. The code stays `INVALID_CONFIG` for all three. */
export type ConfigSubject = 'VM config' | 'option' | 'argument';

/** The fields of `createSupervisor`, `createVm` and `supervisor.createVm` options that are not `VmConfig` fields. */
const OPTION_FIELDS: ReadonlySet<string> = new Set([
	'stateDir', 'tempRoot', 'cid', 'cidRange', 'crosvmPath', 'dialect', 'driver', 'logger', 'logLevel', 'inspect',
	'bootHangupTimeoutMs', 'stopTimeoutMs', 'payloadChannel', 'requester', 'filePolicy', 'restartPolicy',
	'restartEnvironment', 'groupPolicy', 'createVm options', 'shutdown options',
]);

function configSubjectOf(field: string): ConfigSubject {
	return OPTION_FIELDS.has(/^[^.[]*/.exec(field)?.[0] ?? field) ? 'option' : 'VM config';
}

/** Why the VMM could not be spawned: `VMM_NOT_FOUND`, `VMM_NOT_EXECUTABLE`, `VMM_PRIVILEGED` or `VMM_SPAWN_FAILED`. */
export type VmSpawnErrorCode = 'VMM_NOT_FOUND' | 'VMM_NOT_EXECUTABLE' | 'VMM_PRIVILEGED' | 'VMM_SPAWN_FAILED';

/** Said when crosvm itself is missing: most first runs are on machines without it. */
export const CROSVM_SIM_HINT = '; to try vmwarden without crosvm, pass crosvmPath: crosvmSimPath from \'vmwarden/crosvm-sim\' (the bundled simulator)';

/** The VMM binary is missing, not executable, or the operating system refused to start it. */
export class VmSpawnError extends VmwardenError {
	/** The VMM path as the caller gave it. */
	readonly vmmPath: string;

	constructor(code: VmSpawnErrorCode, vmmPath: string, message: string, options?: ErrorOptions) {
		super(code, code === 'VMM_NOT_FOUND' && /(^|\/)crosvm$/.test(vmmPath) ? `${message}${CROSVM_SIM_HINT}` : message, options);
		this.vmmPath = vmmPath;
	}
}

/** A payload state move that is not forward, with the reference's wording. */
export class InvalidPayloadTransitionError extends VmwardenError {
	readonly from: PayloadState;
	readonly to: PayloadState;

	constructor(from: PayloadState, to: PayloadState) {
		super('INVALID_PAYLOAD_TRANSITION', `Invalid payload state transition from ${from} to ${to}`);
		this.from = from;
		this.to = to;
	}
}

/** An operation the VM's lifecycle state does not allow, such as a second `start()`. */
export class VmStateError extends VmwardenError {
	constructor(message: string) {
		super('VM_STATE', message);
	}
}

/** A QMP exchange failed: no socket, no greeting, an error reply, or no answer in time. */
export class QmpError extends VmwardenError {
	constructor(message: string, options?: ErrorOptions) {
		super('QMP_FAILED', message, options);
	}
}

/** `crosvm stop SOCKET` failed: the VM did not get (or did not acknowledge) the request. */
export class StopRequestError extends VmwardenError {
	/** The stop command's exit status, when it ran and exited. */
	readonly exitCode: number | undefined;
	/** Its stderr, trimmed. */
	readonly stderr: string;

	constructor(message: string, details: {exitCode?: number | undefined; stderr?: string}, options?: ErrorOptions) {
		super('STOP_REQUEST_FAILED', message, options);
		this.exitCode = details.exitCode;
		this.stderr = details.stderr ?? '';
	}
}

/** Every CID of the range is held by a VM that is not yet dead and cleaned up. */
export class NoAvailableCidError extends VmwardenError {
	/** A `CidRange`, spelled out because services/cids/range.ts imports this module. */
	readonly range: {first: number; last: number};

	constructor(range: {first: number; last: number}) {
		super('NO_AVAILABLE_CID', `no available CID: all ${range.last - range.first + 1} CIDs of ${range.first}..${range.last} are held`);
		this.range = {first: range.first, last: range.last};
	}
}

/** The error thrown for a file that is not a vmwarden inspection recording. */
export class InspectionFileError extends VmwardenError {
	constructor(file: string, line: number, reason: string) {
		super('INSPECTION_FILE', `${file}:${line}: ${reason}`);
	}
}

/** `createVm`, or a never-started VM's `start()`, after `shutdown()`: the supervisor takes and starts no more VMs. */
export class SupervisorShutDownError extends VmwardenError {
	constructor() {
		super('SUPERVISOR_SHUT_DOWN', 'The supervisor is shutting down or shut down: no VM is created or started any more');
	}
}

/** Thrown with crosvm's wording; the caller adds the field name. */
export class CpuAffinityError extends VmwardenError {
	constructor(message: string) {
		super('CPU_AFFINITY', message);
	}
}

/** The supervisor actor itself failed (a bug, never a refusal): its VMs were stopped with it. */
export class SupervisorFailedError extends VmwardenError {
	constructor(cause: unknown) {
		super('SUPERVISOR_FAILED', `The supervisor actor failed: ${String(cause)}`, {cause});
	}
}

/**
 * A file in the state directory could not be written or removed (disk full, read-only file
 * system, permissions). Returned in a result, never thrown into the supervisor machine.
 */
export class StateDirError extends VmwardenError {
	/** The file that could not be written or removed. */
	readonly path: string;
	/** Why, without the path. */
	readonly reason: string;

	constructor(path: string, reason: string, options?: ErrorOptions) {
		super('STATE_DIR', `State directory: ${path}: ${reason}`, options);
		this.path = path;
		this.reason = reason;
	}
}

/** `createVm` into a supervision group that gave up or is ending: it takes no more VMs. */
export class SupervisionGroupClosedError extends VmwardenError {
	readonly group: string;

	constructor(group: string) {
		super('SUPERVISION_GROUP_CLOSED', `Supervision group ${group} gave up or is ending: it takes no more VMs`);
		this.group = group;
	}
}

/**
 * A config file that could not be read as JSON: missing, unreadable, too large, not UTF-8 JSON. A
 * file that parses but holds a bad config is an `InvalidConfigError` instead.
 */
export class ConfigFileError extends VmwardenError {
	/** The file as it was named. */
	readonly file: string;
	/** Why, without the file name. */
	readonly reason: string;

	constructor(file: string, reason: string, options?: ErrorOptions) {
		super('CONFIG_FILE', `${file}: ${reason}`, options);
		this.file = file;
		this.reason = reason;
	}
}

/** What a control request asked of a running VMM: suspend, resume, a balloon size, balloon statistics. */
export type VmControlOperation = 'suspend' | 'resume' | 'setBalloon' | 'balloonStats';

/**
 * A control request to a running VMM failed: `crosvm suspend|resume|balloon|balloon_stats SOCKET`
 * exited with an error or timed out, QMP refused, or the answer was not what that VMM answers.
 */
export class VmControlError extends VmwardenError {
	readonly operation: VmControlOperation;
	/** The control command's exit status, when it ran and exited. */
	readonly exitCode: number | undefined;
	/** Its stderr, trimmed (bounded). */
	readonly stderr: string;

	constructor(operation: VmControlOperation, message: string, details: {exitCode?: number | undefined; stderr?: string} = {}, options?: ErrorOptions) {
		super('VM_CONTROL_FAILED', message, options);
		this.operation = operation;
		this.exitCode = details.exitCode;
		this.stderr = details.stderr ?? '';
	}
}

/** The VM's driver has no way to do a control operation (a custom driver, or QEMU without a balloon). */
export class VmControlUnsupportedError extends VmwardenError {
	readonly operation: VmControlOperation;

	constructor(operation: VmControlOperation, driver: string, why = 'its driver does not implement it') {
		super('VM_CONTROL_UNSUPPORTED', `${driver} cannot ${operation}: ${why}`);
		this.operation = operation;
	}
}
