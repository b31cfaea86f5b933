import type {BackoffPolicy} from './policy.js';

/**
 * The delay before restart number `attempt` (0 for the first since the last reset): `initialDelayMs`
 * times `factor` to the `attempt`, capped at `maxDelayMs`, less up to `jitter` of it at random.
 * Jitter only shortens a delay, so the cap holds and the schedule without jitter is its upper bound.
 * `random` is a number in [0, 1).
 */
export function backoffDelayMs(backoff: BackoffPolicy, attempt: number, random: number): number {
	const base = backoffBaseMs(backoff, attempt);
	return Math.round(base * (1 - backoff.jitter * Math.min(Math.max(random, 0), 1)));
}

/** The delay without jitter: monotone in `attempt` up to `maxDelayMs`. */
export function backoffBaseMs(backoff: BackoffPolicy, attempt: number): number {
	if (backoff.initialDelayMs === 0) {
		return 0;
	}

	// factor ** attempt may be Infinity for a long crash loop: the cap takes it.
	return Math.min(backoff.maxDelayMs, Math.round(backoff.initialDelayMs * backoff.factor ** Math.max(0, attempt)));
}

/**
 * The backoff step after a life ended: back to the first step when the life ran healthily for
 * `resetAfterMs`, else one step further.
 */
export function nextAttempt(attempt: number, ranHealthily: boolean): number {
	return ranHealthily ? 0 : attempt + 1;
}
