import {assertEvent, assign, emit, enqueueActions, sendParent, setup, type ActorRefFrom} from 'xstate';
import {backoffDelayMs} from '../services/restart/backoff.js';
import {RestartEnvironment} from '../services/restart/environment.js';
import {admitRestart, type RestartWindow} from '../services/restart/intensity.js';
import type {RestartPolicy} from '../services/restart/policy.js';
import {judgeDeath} from '../services/restart/verdict.js';
import {watchLife, type LifeRef} from '../services/restart/watch-life.js';
import type {DeathReason} from '../services/death/reason.js';
import type {VmDeath} from '../types.js';

export interface RestartMachineInput {
	cid: number;
	policy: RestartPolicy;
	/** The first life, spawned and not yet started. */
	vm: LifeRef;
	/** Count healthy running from payload Ready (a VM with the payload channel) or from start. */
	healthFrom: 'ready' | 'start';
	env?: RestartEnvironment;
}

/** Why a restart is due: a death reason, or a restart that failed to start. */
export type RestartCause = DeathReason | 'START_FAILED';

export interface RestartContext {
	cid: number;
	policy: RestartPolicy;
	healthFrom: 'ready' | 'start';
	env: RestartEnvironment;
	/** The current life (the VM actor the supervisor spawned last). */
	vm: LifeRef;
	/** The backoff step of the next restart: 0 after a healthy life. */
	attempt: number;
	/** Restarts asked of the supervisor so far. */
	restarts: number;
	/** When the restarts inside the intensity window happened. */
	window: RestartWindow;
	/** The newest deaths, oldest first, at most `policy.historySize`. */
	deaths: VmDeath[];
	/** The delay of the restart being waited for, and why. */
	delayMs: number;
	cause: RestartCause | undefined;
	/** Set on entering a final state. */
	outcome: RestartOutcome | undefined;
}

export type RestartMachineEvent =
	| {type: 'LIFE.STARTED'}
	| {type: 'LIFE.READY'}
	| {type: 'LIFE.DIED'; death: VmDeath}
	| {type: 'LIFE.START_FAILED'; message: string}
	/** The supervisor spawned the life this machine asked for (with `RESTART.DUE`). */
	| {type: 'LIFE.SPAWNED'; vm: LifeRef}
	/** A stop or kill (by the caller) or a shutdown (by the supervisor) was asked: no restart follows, whatever the next death. */
	| {type: 'END'; initiator: 'caller' | 'supervisor'};

/** What the restart machine reports; the supervisor publishes it in `events$`. */
export type RestartEmitted =
	| {type: 'supervisor.restart.scheduled'; cid: number; attempt: number; delayMs: number; reason: RestartCause; initiator: 'supervisor'}
	| {type: 'supervisor.restart.restarted'; cid: number; restarts: number; initiator: 'supervisor'}
	| {type: 'supervisor.restart.reset'; cid: number; healthyMs: number; initiator: 'supervisor'}
	| {type: 'supervisor.restart.gaveUp'; cid: number; restarts: number; maxRestarts: number; windowMs: number; reason: RestartCause; initiator: 'supervisor'}
	| {type: 'supervisor.restart.cancelled'; cid: number; restarts: number; initiator: 'caller' | 'supervisor'};

/** Sent to the parent when the backoff is over: spawn and start the next life with the same CID. */
export interface RestartDue {
	type: 'RESTART.DUE';
	cid: number;
}

/** How the VM's supervision ended, in the machine's output. */
export type RestartOutcome = 'ended' | 'gave-up' | 'cancelled';

export interface RestartOutput {
	cid: number;
	outcome: RestartOutcome;
	restarts: number;
	/** The last death, if the VM ever died. */
	death: VmDeath | undefined;
}

function causeOf(event: RestartMachineEvent): RestartCause {
	return event.type === 'LIFE.DIED' ? event.death.reason : 'START_FAILED';
}

/**
 * The restart policy of one supervised VM, spawned by the supervisor beside the VM's first life.
 * It watches each life, judges each death against the policy, waits the backoff and asks the
 * supervisor for the next life with `RESTART.DUE`; a healthy life resets the backoff; more restarts
 * than the intensity allows and it gives up. `END` (a stop, kill or shutdown) means no restart ever
 * follows. Final with the outcome once no life runs and none will.
 */
export const restartMachine = setup({
	types: {
		context: {} as RestartContext,
		events: {} as RestartMachineEvent,
		input: {} as RestartMachineInput,
		output: {} as RestartOutput,
		emitted: {} as RestartEmitted,
	},
	actors: {
		watchLife,
	},
	delays: {
		backoff: ({context}) => context.delayMs,
		healthy: ({context}) => context.policy.resetAfterMs,
	},
	guards: {
		healthFromReady: ({context}) => context.healthFrom === 'ready',
		isFinalDeath({context, event}) {
			assertEvent(event, 'LIFE.DIED');
			return judgeDeath(context.policy, event.death) === 'final';
		},
		withinIntensity: ({context}) => admitRestart(context.window, context.env.now(), context.policy.intensity).allowed,
	},
	actions: {
		recordDeath: assign(({context, event}) => {
			assertEvent(event, 'LIFE.DIED');
			return {deaths: [...context.deaths, event.death].slice(-context.policy.historySize)};
		}),
		// Only called after withinIntensity: the restart is admitted into the window here.
		planRestart: assign(({context, event}) => {
			assertEvent(event, ['LIFE.DIED', 'LIFE.START_FAILED']);
			const {window} = admitRestart(context.window, context.env.now(), context.policy.intensity);
			// A reboot restarts at once, as libvirt's on_reboot, and does not lengthen the backoff.
			const reboot = event.type === 'LIFE.DIED' && judgeDeath(context.policy, event.death) === 'reboot';
			const delayMs = reboot ? 0 : backoffDelayMs(context.policy.backoff, context.attempt, context.env.random());
			return {window, delayMs, cause: causeOf(event), attempt: reboot ? context.attempt : context.attempt + 1};
		}),
		emitScheduled: emit(({context}) => ({
			type: 'supervisor.restart.scheduled' as const,
			cid: context.cid,
			attempt: context.restarts + 1,
			delayMs: context.delayMs,
			reason: context.cause ?? 'START_FAILED',
			initiator: 'supervisor' as const,
		})),
		requestRestart: enqueueActions(({context, enqueue}) => {
			enqueue.assign({restarts: context.restarts + 1});
			enqueue(sendParent({type: 'RESTART.DUE', cid: context.cid} satisfies RestartDue));
		}),
		adoptLife: assign(({event}) => {
			assertEvent(event, 'LIFE.SPAWNED');
			return {vm: event.vm};
		}),
		emitRestarted: emit(({context}) => ({type: 'supervisor.restart.restarted' as const, cid: context.cid, restarts: context.restarts, initiator: 'supervisor' as const})),
		resetBackoff: enqueueActions(({context, enqueue}) => {
			if (context.attempt > 0) {
				enqueue.emit({type: 'supervisor.restart.reset', cid: context.cid, healthyMs: context.policy.resetAfterMs, initiator: 'supervisor'});
			}

			enqueue.assign({attempt: 0});
		}),
		emitGaveUp: emit(({context, event}) => {
			assertEvent(event, ['LIFE.DIED', 'LIFE.START_FAILED']);
			const {maxRestarts, windowMs} = context.policy.intensity;
			return {type: 'supervisor.restart.gaveUp' as const, cid: context.cid, restarts: context.restarts, maxRestarts, windowMs, reason: causeOf(event), initiator: 'supervisor' as const};
		}),
		recordOutcome: assign((_, params: {outcome: RestartOutcome}) => ({outcome: params.outcome})),
		emitCancelled: emit(({context, event}) => {
			assertEvent(event, 'END');
			return {type: 'supervisor.restart.cancelled' as const, cid: context.cid, restarts: context.restarts, initiator: event.initiator};
		}),
	},
}).createMachine({
	id: 'restart',
	context: ({input}) => ({
		cid: input.cid,
		policy: input.policy,
		healthFrom: input.healthFrom,
		env: input.env ?? new RestartEnvironment(),
		vm: input.vm,
		attempt: 0,
		restarts: 0,
		window: [],
		deaths: [],
		delayMs: 0,
		cause: undefined,
		outcome: undefined,
	}),
	output: ({context}) => ({
		cid: context.cid,
		outcome: context.outcome ?? 'ended',
		restarts: context.restarts,
		death: context.deaths.at(-1),
	}),
	initial: 'Idle',
	states: {
		// The first life, not yet started by the caller.
		Idle: {
			invoke: {src: 'watchLife', input: ({context}) => ({vm: context.vm})},
			on: {
				'LIFE.STARTED': 'Alive',
				// The caller's own start failed: the caller has the error, and nothing ran to restart.
				'LIFE.START_FAILED': 'Ended',
				// No END: a stop of a VM never started does nothing, as to a VM never restarted; a
				// shutdown discards it with its restart machine.
			},
		},
		Alive: {
			invoke: {src: 'watchLife', input: ({context}) => ({vm: context.vm})},
			initial: 'Starting',
			states: {
				Starting: {
					always: [{guard: 'healthFromReady', target: 'AwaitingReady'}, {target: 'Proving'}],
				},
				AwaitingReady: {
					on: {'LIFE.READY': 'Proving'},
				},
				Proving: {
					after: {healthy: {target: 'Healthy', actions: 'resetBackoff'}},
				},
				Healthy: {},
			},
			on: {
				'LIFE.DIED': [
					{guard: 'isFinalDeath', target: 'Ended', actions: 'recordDeath'},
					{guard: 'withinIntensity', target: 'Backoff', actions: ['recordDeath', 'planRestart']},
					{target: 'GaveUp', actions: ['recordDeath', 'emitGaveUp']},
				],
				END: 'Ending',
			},
		},
		// A stop, kill or shutdown was asked while a life runs: its death is the last.
		Ending: {
			on: {
				'LIFE.DIED': {target: 'Ended', actions: 'recordDeath'},
			},
		},
		Backoff: {
			entry: 'emitScheduled',
			after: {backoff: {target: 'Restarting', actions: 'requestRestart'}},
			on: {
				END: {target: 'Cancelled', actions: 'emitCancelled'},
			},
		},
		Restarting: {
			initial: 'Spawning',
			states: {
				Spawning: {
					on: {'LIFE.SPAWNED': {target: 'Launching', actions: 'adoptLife'}},
				},
				Launching: {
					invoke: {src: 'watchLife', input: ({context}) => ({vm: context.vm})},
					on: {
						'LIFE.STARTED': {target: '#restart.Alive', actions: 'emitRestarted'},
						'LIFE.START_FAILED': [
							{guard: 'withinIntensity', target: '#restart.Backoff', actions: 'planRestart'},
							{target: '#restart.GaveUp', actions: 'emitGaveUp'},
						],
					},
				},
			},
			on: {
				// The supervisor stops a life that is still launching once this machine is done.
				END: {target: 'Cancelled', actions: 'emitCancelled'},
			},
		},
		Ended: {type: 'final', entry: {type: 'recordOutcome', params: {outcome: 'ended'}}},
		GaveUp: {type: 'final', entry: {type: 'recordOutcome', params: {outcome: 'gave-up'}}},
		Cancelled: {type: 'final', entry: {type: 'recordOutcome', params: {outcome: 'cancelled'}}},
	},
});

export type RestartActorRef = ActorRefFrom<typeof restartMachine>;
