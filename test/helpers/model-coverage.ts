import type {AnyStateMachine, EventObject, Snapshot} from 'xstate';
import type {AdjacencyValue, TestModel, TestPath} from 'xstate/graph';
import {activeStateIds, stateNodeIds} from './real-states.js';

type MachineSnapshotLike = Snapshot<unknown> & {value: unknown; context: unknown};

/** A model state as the coverage counts it: its value and context (not how it was reached). */
function stateKey(snapshot: MachineSnapshotLike): string {
	return JSON.stringify({value: snapshot.value, context: snapshot.context});
}

function eventKey(event: EventObject): string {
	return JSON.stringify(event);
}

/** The model's state graph. xstate/graph keys it by branded strings, which `Object.values` does not
 * accept as string keys (it would return `any`), hence the widening to plain string keys. */
function vertices<TSnapshot extends Snapshot<unknown>, TEvent extends EventObject>(model: TestModel<TSnapshot, TEvent, unknown>): Array<AdjacencyValue<TSnapshot, TEvent>> {
	return Object.values(model.getAdjacencyMap() as Record<string, AdjacencyValue<TSnapshot, TEvent>>);
}

/** A path's events in one line: `START → REPORT(Started) → EXIT(panic)`. */
export function describePath(path: TestPath<Snapshot<unknown>, EventObject>): string {
	return path.steps
		.map(step => step.event)
		.filter(event => event.type !== 'xstate.init')
		.map(event => {
			const {type, ...parameters} = event;
			const values = Object.values(parameters);
			return values.length === 0 ? type : `${type}(${values.map(String).join(', ')})`;
		})
		.join(' → ');
}

export interface ModelCoverage {
	/** State node ids of the model that no path enters. */
	missingStates: string[];
	/** Transitions of the model's state graph (state, event → state) that no path takes. */
	missingTransitions: string[];
	/** How many transitions the model's state graph has. */
	transitions: number;
}

/**
 * Checks paths against the whole state graph of a model: every state node entered, and every edge
 * of the adjacency map (from a state, by an event, to a state) taken by some path.
 */
export function modelCoverage<TSnapshot extends Snapshot<unknown>, TEvent extends EventObject>(
	model: TestModel<TSnapshot, TEvent, unknown>,
	paths: Array<TestPath<TSnapshot, TEvent>>,
): ModelCoverage {
	const machine = model.testLogic as unknown as AnyStateMachine;
	const entered = new Set<string>();
	const taken = new Set<string>();
	for (const path of paths) {
		let previous: MachineSnapshotLike | undefined;
		for (const step of path.steps) {
			const state = step.state as unknown as MachineSnapshotLike;
			for (const id of activeStateIds(machine, state.value as never)) {
				entered.add(id);
			}

			if (previous !== undefined) {
				taken.add(`${stateKey(previous)} --${eventKey(step.event)}--> ${stateKey(state)}`);
			}

			previous = state;
		}
	}

	const all = new Set<string>();
	for (const vertex of vertices(model)) {
		for (const {event, state} of Object.values(vertex.transitions)) {
			all.add(`${stateKey(vertex.state as unknown as MachineSnapshotLike)} --${eventKey(event)}--> ${stateKey(state as unknown as MachineSnapshotLike)}`);
		}
	}

	return {
		missingStates: [...stateNodeIds(machine)].filter(id => !entered.has(id)),
		missingTransitions: [...all].filter(transition => !taken.has(transition)),
		transitions: all.size,
	};
}

/**
 * Event sequences from the initial state that together take every transition of the model's state
 * graph at least once: each walk takes an untaken transition where it stands, or goes the shortest
 * way to the nearest state that has one, until none is reachable (for example after a shutdown).
 * Far fewer steps than one shortest path per transition, and each walk is a real session.
 */
export function coveringWalks<TSnapshot extends Snapshot<unknown>, TEvent extends EventObject>(
	model: TestModel<TSnapshot, TEvent, unknown>,
	initial: TSnapshot,
): TEvent[][] {
	type Edge = {event: TEvent; key: string; to: string};
	const graph = new Map<string, Edge[]>();
	for (const vertex of vertices(model)) {
		const from = stateKey(vertex.state as unknown as MachineSnapshotLike);
		const edges = graph.get(from) ?? [];
		graph.set(from, edges);
		for (const {event, state} of Object.values(vertex.transitions)) {
			const key = `${from} --${eventKey(event)}`;
			if (!edges.some(edge => edge.key === key)) {
				edges.push({event, key, to: stateKey(state as unknown as MachineSnapshotLike)});
			}
		}
	}

	const untaken = new Set([...graph.values()].flat().map(edge => edge.key));
	const routeToUntaken = (from: string): Edge[] | undefined => {
		const routes = new Map<string, Edge[]>([[from, []]]);
		const queue = [from];
		while (queue.length > 0) {
			const at = queue.shift()!;
			const route = routes.get(at)!;
			for (const edge of graph.get(at) ?? []) {
				if (untaken.has(edge.key)) {
					return [...route, edge];
				}

				if (!routes.has(edge.to)) {
					routes.set(edge.to, [...route, edge]);
					queue.push(edge.to);
				}
			}
		}

		return undefined;
	};

	const walks: TEvent[][] = [];
	const start = stateKey(initial as unknown as MachineSnapshotLike);
	while (untaken.size > 0) {
		const walk: TEvent[] = [];
		let at = start;
		for (let route = routeToUntaken(at); route !== undefined; route = routeToUntaken(at)) {
			for (const edge of route) {
				walk.push(edge.event);
				untaken.delete(edge.key);
				at = edge.to;
			}
		}

		if (walk.length === 0) {
			throw new Error(`transitions unreachable from the initial state: ${[...untaken].join('; ')}`);
		}

		walks.push(walk);
	}

	return walks;
}
