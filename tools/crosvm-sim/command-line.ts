import {flagValue, hasSwitch, parseCommand, prepareArguments, type CommandSpec, type FlagSpec} from './arguments.js';
import type {SimBuild} from './build.js';
import {ArgumentError, ConfigurationError, HelpRequest} from './failures.js';
import {LOG_LEVELS, type LogLevel} from './log.js';
import {parseRunCommand, runFlags} from './run-command.js';
import {runArguments2022} from './run-command-2022.js';
import {checkRunCommand, type RunConfig} from './run-config.js';
import {formatUsage} from './usage.js';
import {MAX_U64} from './control-protocol.js';

export const CONTROL_SUBCOMMANDS = ['stop', 'suspend', 'resume'] as const;

export type ControlSubcommand = (typeof CONTROL_SUBCOMMANDS)[number];

/** The balloon's subcommands (src/crosvm/cmdline.rs at f1e797a68; src/crosvm.rs at efdcf90a4). */
export const BALLOON_SUBCOMMANDS = ['balloon', 'balloon_stats'] as const;

/** A balloon request: a new size (`wait` only on the current build), or the statistics. */
export type BalloonRequest = {kind: 'adjust'; numBytes: number; wait: boolean | undefined} | {kind: 'stats'};

/** What a command line asks of the simulator, decided before anything is opened or started. */
export type Interpretation =
	| {kind: 'help'; usage: string}
	/** crosvm refuses the line: `message` goes to the error log (or bare to stderr when not `logged`). */
	| {kind: 'refused'; status: number; message: string; logged: boolean}
	| {kind: 'run'; config: RunConfig; extendedStatus: boolean; logLevel?: LogLevel}
	| {kind: 'control'; subcommand: ControlSubcommand; socket: string; logLevel?: LogLevel}
	| {kind: 'balloon'; request: BalloonRequest; socket: string; logLevel?: LogLevel}
	| {kind: 'version'; logLevel?: LogLevel};

const SUBCOMMANDS = ['run', ...CONTROL_SUBCOMMANDS, ...BALLOON_SUBCOMMANDS, 'version'];

/**
 * Top-level flags: `CrosvmCmdlineArgs` in src/crosvm/cmdline.rs at f1e797a68; the 2022 build
 * (src/crosvm.rs at efdcf90a4) had no top-level `--syslog-tag` (it was a `run` argument).
 */
function topLevel(build: SimBuild): CommandSpec {
	const flags: FlagSpec[] = [
		{long: '--extended-status', kind: 'switch', description: 'use extended exit status'},
		{long: '--log-level', kind: 'single', description: 'log level: off, error, warn, info, debug, trace'},
		...(build.dialect === 'current' ? [{long: '--syslog-tag', kind: 'single', description: 'tag for syslog messages'} as const] : []),
		{long: '--no-syslog', kind: 'switch', description: 'do not log to syslog'},
	];
	return {
		flags,
		positionals: [],
		requiredPositionals: 0,
		subcommands: SUBCOMMANDS,
		usage: `${formatUsage('crosvm', '[<options>] <command> [<args>]', 'crosvm-sim: crosvm\'s command line, with a guest script instead of a kernel', flags)}
Commands:
  run      Start a new crosvm instance
  stop     Stops crosvm instances via their control sockets
  suspend  Suspends the crosvm instance
  resume   Resumes the crosvm instance
  balloon  Set balloon size of the crosvm instance to SIZE bytes
  balloon_stats  Prints virtio balloon statistics for a VM_SOCKET
  version  Show package version
`,
	};
}

function controlSpec(name: string): CommandSpec {
	return {flags: [], positionals: ['VM_SOCKET'], requiredPositionals: 1, usage: formatUsage(`crosvm ${name}`, 'VM_SOCKET', `${name[0]!.toUpperCase()}${name.slice(1)}s the crosvm instance listening on VM_SOCKET`, [])};
}

/**
 * `balloon SIZE VM_SOCKET [--wait]`: SIZE is argh's u64 (Rust's `u64::from_str`: decimal digits,
 * an optional leading `+`); `--wait` arrived after 2022.
 */
function balloonSpec(build: SimBuild): CommandSpec {
	const flags: FlagSpec[] = build.dialect === 'current' ? [{long: '--wait', kind: 'switch', description: 'wait for response'}] : [];
	return {flags, positionals: ['SIZE', 'VM_SOCKET'], requiredPositionals: 2, usage: formatUsage('crosvm balloon', 'SIZE VM_SOCKET', 'Set balloon size of the crosvm instance to `SIZE` bytes', flags)};
}

function parseU64(name: string, text: string): number {
	const digits = text.startsWith('+') ? text.slice(1) : text;
	const problem = digits === '' ? 'cannot parse integer from empty string' : /^\d+$/.test(digits) ? (BigInt(digits) > MAX_U64 ? 'number too large to fit in target type' : undefined) : 'invalid digit found in string';
	if (problem !== undefined) {
		throw new ArgumentError(`Error parsing positional argument '${name}' with value '${text}': ${problem}`);
	}

	return Number(digits);
}

function balloonCommand(build: SimBuild, name: string, args: string[]): {request: BalloonRequest; socket: string} {
	if (name === 'balloon_stats') {
		const parsed = parseCommand({flags: [], positionals: ['VM_SOCKET'], requiredPositionals: 1, usage: formatUsage('crosvm balloon_stats', 'VM_SOCKET', 'Prints virtio balloon statistics for a `VM_SOCKET`', [])}, args);
		return {request: {kind: 'stats'}, socket: parsed.positionals[0]!};
	}

	const parsed = parseCommand(balloonSpec(build), args);
	const numBytes = parseU64('SIZE', parsed.positionals[0]!);
	return {request: {kind: 'adjust', numBytes, wait: build.dialect === 'current' ? hasSwitch(parsed, '--wait') : undefined}, socket: parsed.positionals[1]!};
}

function logLevel(text: string | undefined): {logLevel?: LogLevel} {
	return text !== undefined && (LOG_LEVELS as readonly string[]).includes(text) ? {logLevel: text as LogLevel} : {};
}

function subcommand(build: SimBuild, name: string, args: string[], extendedStatus: boolean, level: {logLevel?: LogLevel}): Interpretation {
	if (name === 'run') {
		return {kind: 'run', config: checkRunCommand(parseRunCommand(build, args), build), extendedStatus, ...level};
	}

	if (name === 'version') {
		parseCommand({flags: [], positionals: [], requiredPositionals: 0, usage: formatUsage('crosvm version', '', 'Show package version', [])}, args);
		return {kind: 'version', ...level};
	}

	if ((BALLOON_SUBCOMMANDS as readonly string[]).includes(name)) {
		return {kind: 'balloon', ...balloonCommand(build, name, args), ...level};
	}

	const parsed = parseCommand(controlSpec(name), args);
	return {kind: 'control', subcommand: name as ControlSubcommand, socket: parsed.positionals[0]!, ...level};
}

/**
 * Reads a command line as the emulated crosvm build would, without touching anything. Today's
 * crosvm (src/main.rs at f1e797a68) splits `--flag=value` and rewrites `-h` before argh parses,
 * and an argument error exits 35. The 2022 build (src/main.rs at efdcf90a4) had argh parse only
 * the top level (an error there: argh's text on stderr, exit 1) and handed `run`'s arguments to
 * its own parser, whose every error was logged and exited 1.
 */
export function interpretCommandLine(build: SimBuild, argv: readonly string[]): Interpretation {
	const legacy = build.dialect === 'aosp-2022';
	let top;
	try {
		top = parseCommand(topLevel(build), legacy ? argv : prepareArguments(argv));
	} catch (error) {
		if (error instanceof HelpRequest) {
			return {kind: 'help', usage: error.usage};
		}

		if (legacy && error instanceof ArgumentError) {
			return {kind: 'refused', status: 1, message: `${error.message}\nRun crosvm --help for more information.`, logged: false};
		}

		return refusal(build, error);
	}

	const {name, args} = top.subcommand!;
	try {
		return subcommand(build, name, args, hasSwitch(top, '--extended-status'), logLevel(flagValue<string>(top, '--log-level')));
	} catch (error) {
		// 2022: argh parsed every subcommand but `run`, and its errors are not logged.
		if (legacy && name !== 'run' && error instanceof ArgumentError) {
			return {kind: 'refused', status: 1, message: `${error.message}\nRun crosvm ${name} --help for more information.`, logged: false};
		}

		return refusal(build, error);
	}
}

function refusal(build: SimBuild, error: unknown): Interpretation {
	const legacy = build.dialect === 'aosp-2022';
	if (error instanceof HelpRequest) {
		return {kind: 'help', usage: error.usage};
	}

	if (error instanceof ArgumentError) {
		return {kind: 'refused', status: legacy ? 1 : 35, message: legacy ? error.message : `arg parsing failed: ${error.message}`, logged: true};
	}

	if (error instanceof ConfigurationError) {
		return {kind: 'refused', status: 1, message: legacy ? error.message : `exiting with error 1: ${error.message}`, logged: true};
	}

	throw error;
}

/** The `run` flags a build knows (long names), for coverage checks and docs. */
export function knownRunFlags(build: SimBuild): string[] {
	return build.dialect === 'aosp-2022'
		? runArguments2022(build).filter(({long}) => long !== '' && long !== 'help').map(({long, short}) => short === undefined ? `--${long}` : `--${long}|-${short}`)
		: runFlags(build).map(({long, short}) => short === undefined ? long : `${long}|${short}`);
}
