import {VmwardenError} from '../errors.js';
import type {PayloadState} from './payload-state.js';

/** Why the VMM could not be spawned: `VMM_NOT_FOUND`, `VMM_NOT_EXECUTABLE` or `VMM_SPAWN_FAILED`. */
export type VmSpawnErrorCode = 'VMM_NOT_FOUND' | 'VMM_NOT_EXECUTABLE' | 'VMM_SPAWN_FAILED';

/** The VMM binary is missing, not executable, or the operating system refused to start it. */
export class VmSpawnError extends VmwardenError {
	/** The VMM path as the caller gave it. */
	readonly vmmPath: string;

	constructor(code: VmSpawnErrorCode, vmmPath: string, message: string, options?: ErrorOptions) {
		super(code, message, options);
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
