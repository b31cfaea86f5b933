/**
 * The two ways `crosvm` refuses to run, which differ in exit status and in how they are logged:
 * an argument error (`arg parsing failed: ...`, exit 35, or 1 in 2022 builds) and a configuration or
 * setup error (`exiting with error 1: ...`).
 */
export class ArgumentError extends Error {}

export class ConfigurationError extends Error {}

/** A value that a flag's parser refused; the argument parser adds the flag and the value. */
export class ValueError extends Error {}

/** `help`, `--help` or `-h`: print this text on stdout and exit 0. */
export class HelpRequest extends Error {
	readonly usage: string;

	constructor(usage: string) {
		super('help requested');
		this.usage = usage;
	}
}

/**
 * crosvm's "invalid value" text: `argument::Error::InvalidValue` quotes the value (`{value:?}`,
 * src/crosvm/argument.rs at efdcf90a4); today's `invalid_value_err` does not (src/crosvm/config.rs
 * at f1e797a68).
 */
export function invalidValue(value: string, expected: string, grammar: '2022' | 'current'): ValueError {
	return new ValueError(`invalid value ${grammar === '2022' ? JSON.stringify(value) : value}: ${expected}`);
}
