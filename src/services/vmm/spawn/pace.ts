const waiting: Array<{resolve: () => void; owner: object | undefined}> = [];
/** Whether a turn was granted in the current event-loop turn (cleared by the next `tick`). */
let granted = false;
/** Whose work the granted turn is, when its taker said. */
let holder: object | undefined;
let scheduled = false;
/** What a caller that may go at once awaits: already settled, shared, so it costs nothing to return. */
const NOW = Promise.resolve();

function schedule(): void {
	if (!scheduled) {
		scheduled = true;
		setImmediate(tick);
	}
}

function tick(): void {
	scheduled = false;
	granted = false;
	holder = undefined;
	const next = waiting.shift();
	if (next !== undefined) {
		granted = true;
		holder = next.owner;
		next.resolve();
		// Also clears `granted` once this turn is over.
		schedule();
	}
}

/**
 * Resolves when this caller may do its synchronous spawn work (temporary directory, descriptors,
 * the request to the spawner process, the transition that follows a reply). One caller per
 * event-loop turn, in order: the work a waiter does after its turn (including the promise chains it
 * resolves) ends with that turn, so no turn holds more than one VM's work, and timers and I/O run
 * between any two. A thousand VMs started in one tick become a thousand short turns instead of one
 * long block; the first caller of a turn goes at once, so a lone start waits for nothing. A caller
 * that names the `owner` of its work goes on in a turn granted to the same owner: one VM's exit and
 * the death that follows it in the same event-loop turn are one VM's work, not two.
 */
export function spawnTurn(owner?: object): Promise<void> {
	if (granted && owner !== undefined && holder === owner) {
		return NOW;
	}

	if (!granted && waiting.length === 0) {
		granted = true;
		holder = owner;
		schedule();
		return NOW;
	}

	// Not an async function: a fleet's start() calls in one tick each hold this promise until their
	// turn, and an async function's own promise and frame would double what each one keeps.
	return new Promise<void>(resolve => {
		waiting.push({resolve, owner});
		schedule();
	});
}
