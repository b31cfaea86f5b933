import type {IntensityPolicy} from './policy.js';

/** The times (ms) of the restarts still inside the window, oldest first. */
export type RestartWindow = readonly number[];

/**
 * Whether one more restart at `now` is allowed: at most `maxRestarts` restarts within any
 * `windowMs` (OTP's intensity: more than MaxR restarts within MaxT and the supervisor gives up).
 * Returns the window with this restart added when it is allowed, pruned of restarts older than the
 * window either way, so the window never holds more than `maxRestarts` times.
 */
export function admitRestart(window: RestartWindow, now: number, intensity: IntensityPolicy): {allowed: boolean; window: RestartWindow} {
	const recent = window.filter(time => now - time < intensity.windowMs);
	if (recent.length >= intensity.maxRestarts) {
		return {allowed: false, window: recent};
	}

	return {allowed: true, window: [...recent, now]};
}
