import {VmwardenError} from '../../errors.js';

/** A control request's failure, typed: a driver's `VmwardenError` as is, anything else wrapped. */
export function controlErrorOf(error: unknown): VmwardenError {
	return error instanceof VmwardenError ? error : new VmwardenError('VM_CONTROL_FAILED', `control request failed: ${String(error)}`, {cause: error});
}
