import {performance} from 'node:perf_hooks';

/** The most of one event-loop turn that queued spawn work may take before others get the loop. */
export const SPAWN_TURN_BUDGET_MS = 4;

const waiting: Array<() => void> = [];
let scheduled = false;

function schedule(): void {
	if (!scheduled) {
		scheduled = true;
		setImmediate(() => {
			void grantTurns();
		});
	}
}

async function grantTurns(): Promise<void> {
	const began = performance.now();
	while (waiting.length > 0 && performance.now() - began < SPAWN_TURN_BUDGET_MS) {
		waiting.shift()!();
		// One microtask hop: the waiter just granted runs its synchronous part before the clock is read.
		await null;
	}

	scheduled = false;
	if (waiting.length > 0) {
		schedule();
	}
}

/**
 * Resolves when this caller may do its synchronous spawn work (temporary directory, descriptors,
 * the request to the spawner thread). Callers are served in order, as many per event-loop turn as
 * fit in `SPAWN_TURN_BUDGET_MS`: a thousand VMs started in one tick become a few hundred short
 * turns instead of one long block, and a lone start waits only for the current turn to end.
 */
export async function spawnTurn(): Promise<void> {
	await new Promise<void>(resolve => {
		waiting.push(resolve);
		schedule();
	});
}
