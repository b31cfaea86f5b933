import type {AnyStateMachine, AnyStateNode, InspectionEvent, StateValue} from 'xstate';

/** Every state node id of a machine definition (the root included). */
export function stateNodeIds(machine: AnyStateMachine): Set<string> {
	const ids = new Set<string>();
	const walk = (node: AnyStateNode): void => {
		ids.add(node.id);
		for (const child of Object.values(node.states)) {
			walk(child);
		}
	};

	walk(machine.root);
	return ids;
}

/**
 * The state node ids active in a snapshot's value (every ancestor included), read through the
 * definition so ids set with `id:` are honoured.
 */
export function activeStateIds(machine: AnyStateMachine, value: StateValue): string[] {
	const ids: string[] = [machine.root.id];
	const walk = (node: AnyStateNode, part: StateValue): void => {
		const entries: Array<[string, StateValue | undefined]> = typeof part === 'string' ? [[part, undefined]] : Object.entries(part);
		for (const [key, inner] of entries) {
			const child = node.states[key];
			if (child === undefined) {
				continue;
			}

			ids.push(child.id);
			if (inner !== undefined) {
				walk(child, inner);
			}
		}
	};

	walk(machine.root, value);
	return ids;
}

/**
 * An inspection observer that adds every state the system's root actor enters to `visited`. It
 * reads microsteps, so states the machine passes through within one macrostep (an eventless
 * transition, a final region completing its parent) count too, not only the settled snapshots.
 */
export function recordStatesOf(machine: AnyStateMachine, visited: Set<string>): (event: InspectionEvent) => void {
	return event => {
		const isRoot = (event.actorRef as {_parent?: unknown})._parent === undefined;
		if (isRoot && (event.type === '@xstate.microstep' || event.type === '@xstate.snapshot')) {
			for (const id of activeStateIds(machine, (event.snapshot as unknown as {value: StateValue}).value)) {
				visited.add(id);
			}
		}
	};
}
