import {assign, setup} from 'xstate';

/**
 * The abstract model of a supervisor over a range of three CIDs: VMs are created (each takes the
 * next free CID after the last one allocated, wrapping and skipping held ones), a create is refused
 * when every CID is held, VMs are stopped or killed (their CID is released once they are dead and
 * cleaned up), and the fleet is shut down, after which creates are refused. No invokes or delays:
 * each path is executed against the real supervisor on crosvm-sim.
 */

/** CIDs of the model range, as offsets from the range's first CID. */
export const MODEL_RANGE_SIZE = 2;

export interface SupervisorModelContext {
	/** Offsets of the CIDs held, ascending. */
	held: number[];
	/** Offset of the last CID allocated, if any (forgotten at shutdown: nothing allocates after it). */
	last: number | undefined;
	/** The refusal the last event met, if it was refused. */
	refusal: 'NO_CID' | 'SHUT_DOWN' | undefined;
}

export type SupervisorModelEvent =
	| {type: 'CREATE'}
	| {type: 'CREATE_REFUSED'}
	/** Gracefully stop the VM with the lowest CID held. */
	| {type: 'STOP_LOWEST'}
	/** Kill the VM with the highest CID held. */
	| {type: 'KILL_HIGHEST'}
	| {type: 'SHUTDOWN'};

/** The offset the next allocation takes: after the last one, wrapping, skipping held ones. */
export function nextOffset(context: Pick<SupervisorModelContext, 'held' | 'last'>): number | undefined {
	const start = context.last === undefined ? 0 : (context.last + 1) % MODEL_RANGE_SIZE;
	for (let step = 0; step < MODEL_RANGE_SIZE; step++) {
		const offset = (start + step) % MODEL_RANGE_SIZE;
		if (!context.held.includes(offset)) {
			return offset;
		}
	}

	return undefined;
}

export const supervisorModel = setup({
	types: {
		context: {} as SupervisorModelContext,
		events: {} as SupervisorModelEvent,
	},
	guards: {
		hasFreeCid: ({context}) => nextOffset(context) !== undefined,
		// One refusal in a row is enough to test it; more would only loop on the same state.
		isExhausted: ({context}) => nextOffset(context) === undefined && context.refusal === undefined,
		hasVm: ({context}) => context.held.length > 0,
		notRefusedYet: ({context}) => context.refusal === undefined,
	},
	actions: {
		allocate: assign(({context}) => {
			const offset = nextOffset(context)!;
			return {held: [...context.held, offset].sort((a, b) => a - b), last: offset, refusal: undefined};
		}),
		refuseNoCid: assign({refusal: 'NO_CID' as const}),
		refuseShutDown: assign({refusal: 'SHUT_DOWN' as const}),
		releaseLowest: assign(({context}) => ({held: context.held.slice(1), refusal: undefined})),
		releaseHighest: assign(({context}) => ({held: context.held.slice(0, -1), refusal: undefined})),
		releaseAll: assign({held: [], last: undefined, refusal: undefined}),
	},
}).createMachine({
	id: 'supervisorModel',
	initial: 'Serving',
	context: {held: [], last: undefined, refusal: undefined},
	states: {
		Serving: {
			on: {
				CREATE: {guard: 'hasFreeCid', actions: 'allocate'},
				CREATE_REFUSED: {guard: 'isExhausted', actions: 'refuseNoCid'},
				STOP_LOWEST: {guard: 'hasVm', actions: 'releaseLowest'},
				KILL_HIGHEST: {guard: 'hasVm', actions: 'releaseHighest'},
				SHUTDOWN: {target: 'ShutDown', actions: 'releaseAll'},
			},
		},
		ShutDown: {
			on: {
				CREATE_REFUSED: {guard: 'notRefusedYet', actions: 'refuseShutDown'},
			},
		},
	},
});

export const SUPERVISOR_MODEL_EVENTS: SupervisorModelEvent[] = [
	{type: 'CREATE'},
	{type: 'CREATE_REFUSED'},
	{type: 'STOP_LOWEST'},
	{type: 'KILL_HIGHEST'},
	{type: 'SHUTDOWN'},
];
