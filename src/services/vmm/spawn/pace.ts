const waiting: Array<() => void> = [];
/** Whether a turn was granted in the current event-loop turn (cleared by the next `tick`). */
let granted = false;
let scheduled = false;

function schedule(): void {
	if (!scheduled) {
		scheduled = true;
		setImmediate(tick);
	}
}

function tick(): void {
	scheduled = false;
	granted = false;
	const next = waiting.shift();
	if (next !== undefined) {
		granted = true;
		next();
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
 * long block; the first caller of a turn goes at once, so a lone start waits for nothing.
 */
export async function spawnTurn(): Promise<void> {
	if (!granted && waiting.length === 0) {
		granted = true;
		schedule();
		return;
	}

	await new Promise<void>(resolve => {
		waiting.push(resolve);
		schedule();
	});
}
