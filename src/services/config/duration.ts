import {InvalidConfigError} from '../../errors.js';

/** The longest delay Node's timers take (2^31 - 1 ms, about 24.8 days); a longer one fires at once. */
export const MAX_DELAY_MS = 2 ** 31 - 1;

/** Checks a delay in milliseconds given from outside: an integer from 0 to `MAX_DELAY_MS`. */
export function checkDelayMs(field: string, value: unknown): number {
	if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > MAX_DELAY_MS) {
		throw new InvalidConfigError(field, `${typeof value === 'number' ? String(value) : typeof value} is not a whole number of milliseconds from 0 to ${MAX_DELAY_MS}`);
	}

	return value;
}
