const waiting: Array<() => void> = [];
let scheduled = false;

function schedule(): void {
	if (!scheduled) {
		scheduled = true;
		setImmediate(grantTurn);
	}
}

function grantTurn(): void {
	scheduled = false;
	waiting.shift()?.();
	if (waiting.length > 0) {
		schedule();
	}
}

/**
 * Resolves when this caller may do its synchronous spawn work (temporary directory, descriptors,
 * the request to the spawner thread, the transition that follows a reply). One caller per
 * event-loop turn, in order: the work a waiter does after its turn (including the promise chains it
 * resolves) ends with that turn, so no turn holds more than one VM's work, and timers and I/O run
 * between any two. A thousand VMs started in one tick become a thousand short turns instead of one
 * long block; a lone start waits only for the current turn to end.
 */
export async function spawnTurn(): Promise<void> {
	await new Promise<void>(resolve => {
		waiting.push(resolve);
		schedule();
	});
}
