import type {SupervisorEvent, Vm, VmDeath, VmwardenError} from '../../index.js';

/** A `VmDeath` as JSON: every field present, `null` where the record has nothing. */
export interface DeathJson {
	cid: number;
	reason: string;
	exitCode: number | null;
	signal: string | null;
	failureReason: string | null;
	failureContext: string | null;
	payloadState: string;
	stderrTail: string;
	initiator: string;
}

/** One VM as the API and `--json` output show it. */
export interface VmJson {
	cid: number;
	state: string;
	payloadState: string;
	pid: number | null;
	death: DeathJson | null;
}

export interface ErrorJson {
	code: string;
	message: string;
	field?: string;
	reason?: string;
}

export function deathJson(death: VmDeath): DeathJson {
	return {
		cid: death.cid,
		reason: death.reason,
		exitCode: death.exitCode ?? null,
		signal: death.signal ?? null,
		failureReason: death.failureReason ?? null,
		failureContext: death.failureContext ?? null,
		payloadState: death.payloadState,
		stderrTail: death.stderrTail,
		initiator: death.initiator,
	};
}

/** A live VM; `death` is filled in from the handle once it is dead. */
export function vmJson(vm: Vm, death: VmDeath | undefined): VmJson {
	return {cid: vm.cid, state: vm.state, payloadState: vm.payloadState, pid: vm.pid ?? null, death: death === undefined ? null : deathJson(death)};
}

/** A VM that is gone from the supervisor, from its death record. */
export function deadVmJson(death: VmDeath): VmJson {
	return {cid: death.cid, state: 'Dead', payloadState: death.payloadState, pid: null, death: deathJson(death)};
}

export function errorJson(error: unknown): ErrorJson {
	if (error instanceof Error && 'code' in error && typeof error.code === 'string') {
		const fields = error as Partial<Record<'field' | 'reason', unknown>>;
		return {
			code: error.code,
			message: error.message,
			...(typeof fields.field === 'string' ? {field: fields.field} : {}),
			...(typeof fields.reason === 'string' ? {reason: fields.reason} : {}),
		};
	}

	return {code: 'INTERNAL', message: String(error)};
}

/** A supervisor event as one line of the event stream: deaths and errors as plain JSON. */
export function eventJson(event: SupervisorEvent): Record<string, unknown> {
	if (event.type === 'died') {
		return {...event, death: deathJson(event.death)};
	}

	if (event.type === 'failed') {
		return {...event, error: errorJson(event.error satisfies VmwardenError)};
	}

	return {...event};
}
