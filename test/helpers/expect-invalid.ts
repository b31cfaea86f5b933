import {InvalidConfigError} from '../../src/errors.js';

/** Asserts that `run` throws an `InvalidConfigError` for `field` with exactly `reason`. */
export function expectInvalid(run: () => unknown, field: string, reason: string): void {
	let thrown: unknown;
	try {
		run();
	} catch (error) {
		thrown = error;
	}

	expect(thrown).toBeInstanceOf(InvalidConfigError);
	expect(thrown).toMatchObject({code: 'INVALID_CONFIG', field, reason, message: `Invalid VM config: ${field}: ${reason}`});
}
