import {ArgumentError} from './failures.js';

/**
 * crosvm's own argument parser of 2022, `src/crosvm/argument.rs` at efdcf90a4 (2022-06-13, the
 * last commit before `run` moved to argh). Its rules, unlike argh's:
 * - `--name=value` is split at the first `=`; an empty name or value is a syntax error;
 * - `--name VALUE` takes the next argument only when it does not start with `-`, and a switch
 *   followed by a word leaves the word alone (`--disable-sandbox K` is a switch and a kernel);
 *   so an option's value may never start with `-` unless glued with `=`;
 * - `-xVALUE` is the short option `x` with `VALUE`; `-x VALUE` takes the next argument;
 * - the first positional (the kernel) ends option parsing: everything after it is positional;
 * - `--` ends option parsing too.
 * Errors carry argument.rs's `Error` texts; every one of them makes crosvm exit 1.
 */
export interface Argument2022 {
	/** Empty for the positional. */
	long: string;
	short?: string;
	/** `required` for an option, `disallowed` for a switch. */
	value: 'required' | 'disallowed';
}

/** `argument::Error::ExpectedValue`: `set_arguments` reports it and the parser may retry. */
class ExpectedValue extends ArgumentError {}

/** `help` or `-h`: argument.rs's `Error::PrintHelp`, which ends parsing at once. */
export class PrintHelp extends Error {}

export type Setter2022 = (long: string, value: string | undefined) => void;

/** argument.rs's `set_arguments`: finds the argument by name, checks its value mode, calls `set`. */
function matcher(list: readonly Argument2022[], set: Setter2022): Setter2022 {
	return (name, value) => {
		const byShort = name.length === 1 ? list.find(argument => argument.short === name) : undefined;
		if (byShort !== undefined) {
			if ((value !== undefined) !== (byShort.value === 'required')) {
				throw new ExpectedValue(`expected parameter value: ${name}`);
			}

			set(byShort.long, value);
			return;
		}

		const byLong = list.find(argument => argument.long === name);
		if (byLong === undefined) {
			throw new ArgumentError(`unknown argument: ${name}`);
		}

		if (value === undefined && byLong.value === 'required') {
			throw new ExpectedValue(`expected parameter value: ${byLong.long}`);
		}

		if (value !== undefined && byLong.value === 'disallowed') {
			throw new ArgumentError(`unexpected parameter value: ${byLong.long}`);
		}

		set(byLong.long, value);
	};
}

/** argument.rs's `parse_arguments` over `set_arguments`. Throws `ArgumentError` or `PrintHelp`. */
export function parseArguments2022(args: readonly string[], list: readonly Argument2022[], set: Setter2022): void {
	const apply = matcher(list, set);
	let state: {kind: 'top'} | {kind: 'positional'} | {kind: 'value'; name: string} = {kind: 'top'};
	for (const argument of args) {
		let consumed = false;
		while (!consumed) {
			consumed = true;
			if (state.kind === 'positional') {
				apply('', argument);
			} else if (state.kind === 'value') {
				const {name} = state;
				state = {kind: 'top'};
				if (argument.startsWith('-')) {
					consumed = false;
					apply(name, undefined);
				} else {
					try {
						apply(name, argument);
					} catch (error) {
						// Perhaps a switch followed by a positional: retry without the value, and
						// report the first error if that fails too.
						consumed = false;
						try {
							apply(name, undefined);
						} catch {
							throw error;
						}
					}
				}
			} else if (argument === '--') {
				state = {kind: 'positional'};
			} else if (argument.startsWith('--')) {
				const parameter = argument.replace(/^-+/, '');
				const equals = parameter.indexOf('=');
				if (equals === -1) {
					state = {kind: 'value', name: parameter};
				} else if (equals === 0) {
					throw new ArgumentError('syntax error: expected parameter name before `=`');
				} else if (equals === parameter.length - 1) {
					throw new ArgumentError('syntax error: expected parameter value after `=`');
				} else {
					apply(parameter.slice(0, equals), parameter.slice(equals + 1));
				}
			} else if (argument.startsWith('-')) {
				if (argument.length === 1) {
					throw new ArgumentError('syntax error: expected argument short name after `-`');
				}

				const name = [...argument][1]!;
				const value = argument.length > 1 + name.length ? argument.slice(1 + name.length) : undefined;
				try {
					apply(name, value);
				} catch (error) {
					if (!(error instanceof ExpectedValue)) {
						throw error;
					}

					state = {kind: 'value', name};
				}
			} else {
				apply('', argument);
				state = {kind: 'positional'};
			}
		}
	}

	if (state.kind === 'value') {
		apply(state.name, undefined);
	}
}
