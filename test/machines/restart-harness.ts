/**
 * What the restart machine's tests share: a fake VM life, a parent that spawns the restart machine
 * as the supervisor does and counts its restart requests, and death records.
 */
import {assign, setup, type AnyStateMachine, type AnyStateNode, type AnyTransitionDefinition, type InspectionEvent, type StateValue} from 'xstate';
import {restartMachine} from '../../src/machines/restart.machine.js';
import type {RestartEnvironment} from '../../src/services/restart/environment.js';
import type {RestartPolicy} from '../../src/services/restart/policy.js';
import type {LifeRef} from '../../src/services/restart/watch-life.js';
import type {DeathReason} from '../../src/services/death/reason.js';
import type {PayloadState} from '../../src/services/payload/state.js';
import type {VmDeath} from '../../src/types.js';
import {activeStateIds} from '../helpers/real-states.js';

/** A VM life as the restart machine sees it: NotStarted, then Running, its payload reaching Ready. */
export const fakeLife = setup({
	types: {context: {} as {payloadState: PayloadState}, events: {} as {type: 'RUN'} | {type: 'READY'}},
}).createMachine({
	context: {payloadState: 'Starting'},
	initial: 'NotStarted',
	states: {
		NotStarted: {on: {RUN: 'Running'}},
		Running: {on: {READY: {actions: assign({payloadState: 'Ready' as const})}}},
	},
});

/** Stands in for the supervisor: spawns the restart machine and counts its `RESTART.DUE`s. */
/** `first` is the first life, started by the caller (a fake life actor). */
export function restartHarness(policy: RestartPolicy, healthFrom: 'ready' | 'start', env: RestartEnvironment, first: LifeRef) {
	return setup({
		types: {context: {} as {due: number}, events: {} as {type: 'RESTART.DUE'; cid: number}},
		actors: {restart: restartMachine},
	}).createMachine({
		context: {due: 0},
		invoke: {
			id: 'restart',
			src: 'restart',
			input: {cid: 7, policy, healthFrom, env, vm: first},
		},
		on: {'RESTART.DUE': {actions: assign({due: ({context}) => context.due + 1})}},
	});
}

export function death(reason: DeathReason, initiator: VmDeath['initiator']): VmDeath {
	return {cid: 7, reason, exitCode: undefined, signal: undefined, failureReason: undefined, failureContext: undefined, payloadState: 'Started', stderrTail: '', initiator};
}

/**
 * An inspection observer that adds every state the child actor `id` (a `machine`) enters to
 * `visited`, microsteps included.
 */
export function recordChildStates(machine: AnyStateMachine, id: string, visited: Set<string>): (event: InspectionEvent) => void {
	return event => {
		const {actorRef} = event;
		if ('id' in actorRef && actorRef.id === id && (event.type === '@xstate.microstep' || event.type === '@xstate.snapshot')) {
			const {value} = event.snapshot as {value?: StateValue};
			for (const state of value === undefined ? [] : activeStateIds(machine, value)) {
				visited.add(state);
			}
		}
	};
}

/** A transition as the coverage counts it: its source, event and guard (targets follow from them). */
function transitionKey(transition: AnyTransitionDefinition): string {
	const guard = transition.guard === undefined ? '' : ` [${typeof transition.guard === 'string' ? transition.guard : JSON.stringify(transition.guard)}]`;
	return `${transition.source.id} --${transition.eventType}${guard}--> ${(transition.target ?? []).map(target => target.id).join(',') || '(self)'}`;
}

/** Every transition of a machine's chart: event, eventless (`always`) and delayed ones. */
export function chartTransitions(machine: AnyStateMachine): Set<string> {
	const keys = new Set<string>();
	const walk = (node: AnyStateNode): void => {
		for (const transitions of node.transitions.values()) {
			for (const transition of transitions) {
				keys.add(transitionKey(transition));
			}
		}

		for (const transition of node.always ?? []) {
			keys.add(transitionKey(transition));
		}

		for (const child of Object.values(node.states)) {
			walk(child);
		}
	};

	walk(machine.root);
	return keys;
}

/** An inspection observer that adds every transition the child actor `id` takes to `taken`. */
export function recordChildTransitions(id: string, taken: Set<string>): (event: InspectionEvent) => void {
	return event => {
		const {actorRef} = event;
		if (event.type === '@xstate.microstep' && 'id' in actorRef && actorRef.id === id) {
			for (const transition of event._transitions) {
				taken.add(transitionKey(transition));
			}
		}
	};
}

/** Both: the states the child actor `id` enters into `visited`, the transitions it takes into `taken`. */
export function recordChildCoverage(machine: AnyStateMachine, id: string, visited: Set<string>, taken: Set<string>): (event: InspectionEvent) => void {
	const states = recordChildStates(machine, id, visited);
	const transitions = recordChildTransitions(id, taken);
	return event => {
		states(event);
		transitions(event);
	};
}
