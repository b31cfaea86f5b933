/**
 * The clock and the randomness a restart machine reads: injected so that tests run on a simulated
 * clock with fixed jitter. Kept behind a summary, like the VM's environment, for the inspector.
 */
export class RestartEnvironment {
	constructor(
		/** Milliseconds, as `Date.now()`; used for the intensity window. */
		readonly now: () => number = Date.now,
		/** A number in [0, 1), as `Math.random()`; used for jitter. */
		readonly random: () => number = Math.random,
	) {}

	toJSON(): string {
		return 'RestartEnvironment';
	}
}
