import {ArgumentError, HelpRequest, ValueError} from './failures.js';

/**
 * crosvm's `prepare_argh_args`: every argument longer than one character that starts with `-` and
 * holds `=` is split at its first `=` (`--mem=1024` becomes `--mem 1024`, wherever it stands, even as
 * another option's value), and `-h` becomes `--help`.
 */
export function prepareArguments(args: readonly string[]): string[] {
	const prepared: string[] = [];
	for (const argument of args) {
		const equals = argument.indexOf('=');
		if (argument === '-h') {
			prepared.push('--help');
		} else if (argument.length > 1 && argument.startsWith('-') && equals !== -1) {
			prepared.push(argument.slice(0, equals), argument.slice(equals + 1));
		} else {
			prepared.push(argument);
		}
	}

	return prepared;
}

/** A flag: a switch (never takes a value, may repeat) or an option (takes the next element). */
export interface FlagSpec {
	/** `--mem`. */
	long: string;
	/** `-m`. */
	short?: string;
	kind: 'switch' | 'single' | 'repeated';
	/** Converts a value; throws `ValueError` with crosvm's wording. Default: the string itself. */
	parse?: (value: string) => unknown;
	/** One line for the usage text. */
	description?: string;
}

/** A command's grammar, as argh derives it from crosvm's structs. */
export interface CommandSpec {
	flags: readonly FlagSpec[];
	/** Names of the positional slots, in order (`KERNEL`, `VM_SOCKET`). */
	positionals: readonly string[];
	/** How many positionals are required (from the start of `positionals`). */
	requiredPositionals: number;
	/** Subcommand names: the first positional that is one of them ends this command's arguments. */
	subcommands?: readonly string[];
	usage: string;
}

export interface ParsedCommand {
	/** Parsed values by long flag name; a switch has one `true` per occurrence. */
	flags: Map<string, unknown[]>;
	positionals: string[];
	/** The subcommand and its arguments, when the spec has subcommands. */
	subcommand?: {name: string; args: string[]};
}

const HELP_TRIGGERS = new Set(['--help', 'help']);

/**
 * Parses arguments the way argh does for crosvm: options before or after positionals, `--` ends
 * options, an option takes the next element whatever it looks like, a single-valued option given
 * twice is refused, unknown flags are refused, help prints usage. Throws `ArgumentError` with argh's
 * text, or `HelpRequest`.
 */
export function parseCommand(spec: CommandSpec, args: readonly string[]): ParsedCommand {
	const byName = new Map<string, FlagSpec>();
	for (const flag of spec.flags) {
		byName.set(flag.long, flag);
		if (flag.short !== undefined) {
			byName.set(flag.short, flag);
		}
	}

	const parsed: ParsedCommand = {flags: new Map(), positionals: []};
	let help = false;
	let optionsEnded = false;
	for (let index = 0; index < args.length; index++) {
		const argument = args[index]!;
		if (HELP_TRIGGERS.has(argument) && !optionsEnded) {
			help = true;
			continue;
		}

		if (argument.startsWith('-') && !optionsEnded) {
			if (argument === '--') {
				optionsEnded = true;
				continue;
			}

			if (help) {
				throw new ArgumentError('Trailing arguments are not allowed after `help`.');
			}

			const flag = byName.get(argument);
			if (flag === undefined) {
				throw new ArgumentError(`Unrecognized argument: ${argument}`);
			}

			const values = parsed.flags.get(flag.long) ?? [];
			parsed.flags.set(flag.long, values);
			if (flag.kind === 'switch') {
				values.push(true);
				continue;
			}

			const value = args[++index];
			if (value === undefined) {
				throw new ArgumentError(`No value provided for option '${argument}'.`);
			}

			try {
				if (flag.kind === 'single' && values.length > 0) {
					throw new ValueError('duplicate values provided');
				}

				values.push(flag.parse === undefined ? value : flag.parse(value));
			} catch (error) {
				if (error instanceof ValueError) {
					throw new ArgumentError(`Error parsing option '${argument}' with value '${value}': ${error.message}`);
				}

				throw error;
			}

			continue;
		}

		if (spec.subcommands?.includes(argument)) {
			if (help) {
				// `crosvm help run`: the subcommand's own usage.
				parsed.subcommand = {name: argument, args: ['--help']};
				return parsed;
			}

			parsed.subcommand = {name: argument, args: args.slice(index + 1)};
			break;
		}

		if (parsed.positionals.length >= spec.positionals.length) {
			throw new ArgumentError(`Unrecognized argument: ${argument}`);
		}

		parsed.positionals.push(argument);
	}

	if (help) {
		throw new HelpRequest(spec.usage);
	}

	if (spec.subcommands !== undefined && parsed.subcommand === undefined) {
		throw new ArgumentError(`One of the following subcommands must be present:\n${['help', ...spec.subcommands].map(name => `    ${name}`).join('\n')}`);
	}

	const missing = spec.positionals.slice(parsed.positionals.length, spec.requiredPositionals);
	if (missing.length > 0) {
		throw new ArgumentError(`Required positional arguments not provided:\n${missing.map(name => `    ${name}`).join('\n')}`);
	}

	return parsed;
}

/** The last value of a flag (single-valued flags have at most one). */
export function flagValue<T>(parsed: ParsedCommand, long: string): T | undefined {
	return parsed.flags.get(long)?.at(-1) as T | undefined;
}

/** All values of a repeatable flag, in order. */
export function flagValues<T>(parsed: ParsedCommand, long: string): T[] {
	return (parsed.flags.get(long) ?? []) as T[];
}

/** Whether a switch was given. */
export function hasSwitch(parsed: ParsedCommand, long: string): boolean {
	return (parsed.flags.get(long)?.length ?? 0) > 0;
}
