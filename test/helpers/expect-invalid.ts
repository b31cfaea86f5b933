import {InvalidConfigError, type ConfigSubject} from '../../src/errors.js';

/** Asserts that `run` throws an `InvalidConfigError` for `field` with exactly `reason`, about `subject`. */
export function expectInvalid(run: () => unknown, field: string, reason: string, subject: ConfigSubject = 'VM config'): void {
	let thrown: unknown;
	try {
		run();
	} catch (error) {
		thrown = error;
	}

	expect(thrown).toBeInstanceOf(InvalidConfigError);
	expect(thrown).toMatchObject({code: 'INVALID_CONFIG', field, reason, subject, message: `Invalid ${subject}: ${field}: ${reason}`});
}
