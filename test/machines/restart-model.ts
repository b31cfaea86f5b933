import {assign, setup} from 'xstate';

/**
 * The abstract model of one VM's restart machine under an `on-failure` policy with a small
 * intensity (two restarts within the window) and a backoff that reaches its cap at the third step.
 * Time is an event: the healthy period passing, the backoff elapsing, the intensity window passing.
 * Each path is run against the real restart machine on a simulated clock.
 */

/** The policy the model stands for (and the real machine runs). */
export const MODEL_POLICY = {
	restart: 'on-failure',
	onReboot: 'restart',
	backoff: {initialDelayMs: 100, factor: 2, maxDelayMs: 400, jitter: 0},
	resetAfterMs: 1000,
	intensity: {maxRestarts: 2, windowMs: 10_000},
	historySize: 3,
} as const;

/** The backoff step from which the delay stays at the cap: the model counts no further. */
const CAPPED_STEP = 2;

export interface RestartModelContext {
	/** Count healthy running from payload Ready, or from start. */
	healthFrom: 'ready' | 'start';
	/** The backoff step, counted up to the cap. */
	attempt: number;
	/** Restarts admitted within the current window. */
	inWindow: number;
	/** The delay of the restart being waited for. */
	delayMs: number;
}

export type RestartModelEvent =
	| {type: 'STARTED'}
	| {type: 'READY'}
	/** The healthy period passes while the VM runs. */
	| {type: 'HEALTHY'}
	/** The intensity window passes (only where no timer of the machine would fire). */
	| {type: 'WINDOW_PASSES'}
	| {type: 'CRASH'}
	| {type: 'REBOOT'}
	/** The guest powers off: not a failure. */
	| {type: 'POWEROFF'}
	/** The caller's stop ends the life. */
	| {type: 'STOPPED'}
	| {type: 'START_FAILED'}
	| {type: 'BACKOFF_ELAPSED'}
	| {type: 'SPAWNED'}
	| {type: 'END'};

export const RESTART_MODEL_EVENTS: RestartModelEvent[] = [
	'STARTED', 'READY', 'HEALTHY', 'WINDOW_PASSES', 'CRASH', 'REBOOT', 'POWEROFF', 'STOPPED', 'START_FAILED', 'BACKOFF_ELAPSED', 'SPAWNED', 'END',
].map(type => ({type}) as RestartModelEvent);

function backoffMs(attempt: number): number {
	return Math.min(MODEL_POLICY.backoff.maxDelayMs, MODEL_POLICY.backoff.initialDelayMs * (MODEL_POLICY.backoff.factor ** attempt));
}

export function restartModel(healthFrom: 'ready' | 'start') {
	return setup({
		types: {
			context: {} as RestartModelContext,
			events: {} as RestartModelEvent,
		},
		guards: {
			healthFromReady: ({context}) => context.healthFrom === 'ready',
			admitted: ({context}) => context.inWindow < MODEL_POLICY.intensity.maxRestarts,
		},
		actions: {
			planBackoff: assign(({context}) => ({delayMs: backoffMs(context.attempt), attempt: Math.min(context.attempt + 1, CAPPED_STEP), inWindow: context.inWindow + 1})),
			planReboot: assign(({context}) => ({delayMs: 0, inWindow: context.inWindow + 1})),
			resetBackoff: assign({attempt: 0}),
			forgetWindow: assign({inWindow: 0}),
		},
	}).createMachine({
		id: 'restartModel',
		context: {healthFrom, attempt: 0, inWindow: 0, delayMs: 0},
		initial: 'Idle',
		states: {
			Idle: {
				on: {
					STARTED: [{guard: 'healthFromReady', target: 'Alive.AwaitingReady'}, {target: 'Alive.Proving'}],
					START_FAILED: 'Ended',
				},
			},
			Alive: {
				// Entered through its children only: which one depends on healthFrom.
				initial: 'AwaitingReady',
				states: {
					AwaitingReady: {on: {READY: 'Proving', WINDOW_PASSES: {actions: 'forgetWindow'}}},
					Proving: {on: {HEALTHY: {target: 'Healthy', actions: 'resetBackoff'}}},
					Healthy: {on: {WINDOW_PASSES: {actions: 'forgetWindow'}}},
				},
				on: {
					CRASH: [{guard: 'admitted', target: 'Backoff', actions: 'planBackoff'}, {target: 'GaveUp'}],
					REBOOT: [{guard: 'admitted', target: 'Backoff', actions: 'planReboot'}, {target: 'GaveUp'}],
					POWEROFF: 'Ended',
					STOPPED: 'Ended',
					END: 'Ending',
				},
			},
			Ending: {on: {STOPPED: 'Ended'}},
			Backoff: {on: {BACKOFF_ELAPSED: 'Restarting.Spawning', END: 'Cancelled'}},
			Restarting: {
				initial: 'Spawning',
				states: {
					Spawning: {on: {SPAWNED: 'Launching'}},
					Launching: {
						on: {
							STARTED: [{guard: 'healthFromReady', target: '#restartModel.Alive.AwaitingReady'}, {target: '#restartModel.Alive.Proving'}],
							START_FAILED: [{guard: 'admitted', target: '#restartModel.Backoff', actions: 'planBackoff'}, {target: '#restartModel.GaveUp'}],
						},
					},
				},
				on: {END: 'Cancelled'},
			},
			Ended: {type: 'final'},
			GaveUp: {type: 'final'},
			Cancelled: {type: 'final'},
		},
	});
}
