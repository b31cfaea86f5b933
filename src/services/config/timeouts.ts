import {InvalidConfigError} from '../../errors.js';

/**
 * The longest delay Node's timers keep: a longer one (2^31, 30 days), like NaN or a negative one,
 * fires after 1 ms, which would turn a stop timeout into an immediate kill.
 */
export const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/** Whether `value` is a delay timers honour: a whole number of milliseconds from 0 to 2^31 - 1. */
export function isTimeoutMs(value: unknown): value is number {
	return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= MAX_TIMEOUT_MS;
}

/** Returns `value` if it is a valid timeout; throws `InvalidConfigError` naming `field` otherwise. */
export function checkTimeoutMs(field: string, value: unknown): number {
	if (!isTimeoutMs(value)) {
		const shown = typeof value === 'number' ? String(value) : typeof value;
		throw new InvalidConfigError(field, `must be a whole number of milliseconds from 0 to ${MAX_TIMEOUT_MS}, not ${shown}`);
	}

	return value;
}
