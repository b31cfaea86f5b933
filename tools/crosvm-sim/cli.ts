#!/usr/bin/env -S node --v8-pool-size=1
/**
 * crosvm-sim: a stand-in for crosvm that parses crosvm's command line as one crosvm build would and
 * plays a guest script instead of booting a kernel. See docs/crosvm-sim.md.
 *
 * Only what every path needs is imported here; `run` and the control clients load their code lazily,
 * so an idle simulated VM stays small. `--v8-pool-size=1`: one V8 worker thread instead of one per
 * core, 8 threads per idle VM instead of 11 (threads count against pid_max with a thousand VMs);
 * other V8 flags (--jitless, --max-semi-space-size=1, --lite-mode) were measured and did not lower
 * the private memory of an idle VM (docs/crosvm-sim.md, "Weight").
 */
import {parseCommand, prepareArguments, flagValue, hasSwitch, type CommandSpec} from './arguments.js';
import {argumentErrorStatus, buildFromEnvironment, SimEnvironmentError, type SimBuild} from './build.js';
import {ArgumentError, ConfigurationError, HelpRequest} from './failures.js';
import {log, LOG_LEVELS, setLogLevel, type LogLevel} from './log.js';
import {formatUsage} from './usage.js';

const CONTROL_SUBCOMMANDS = ['stop', 'suspend', 'resume'] as const;

const SUBCOMMANDS = ['run', ...CONTROL_SUBCOMMANDS, 'version'];

const TOP_LEVEL_FLAGS = [
	{long: '--extended-status', kind: 'switch', description: 'use extended exit status'},
	{long: '--log-level', kind: 'single', description: 'log level: off, error, warn, info, debug, trace'},
	{long: '--syslog-tag', kind: 'single', description: 'tag for syslog messages'},
	{long: '--no-syslog', kind: 'switch', description: 'do not log to syslog'},
] as const;

const TOP_LEVEL: CommandSpec = {
	flags: TOP_LEVEL_FLAGS,
	positionals: [],
	requiredPositionals: 0,
	subcommands: SUBCOMMANDS,
	usage: `${formatUsage('crosvm', '[<options>] <command> [<args>]', 'crosvm-sim: crosvm\'s command line, with a guest script instead of a kernel', TOP_LEVEL_FLAGS)}
Commands:
  run      Start a new crosvm instance
  stop     Stops crosvm instances via their control sockets
  suspend  Suspends the crosvm instance
  resume   Resumes the crosvm instance
  version  Show package version
`,
};

function controlSpec(name: string): CommandSpec {
	return {flags: [], positionals: ['VM_SOCKET'], requiredPositionals: 1, usage: formatUsage(`crosvm ${name}`, 'VM_SOCKET', `${name[0]!.toUpperCase()}${name.slice(1)}s the crosvm instance listening on VM_SOCKET`, [])};
}

async function subcommand(build: SimBuild, name: string, args: string[], extendedStatus: boolean): Promise<number | undefined> {
	if (name === 'run') {
		const [{parseRunCommand}, {checkRunCommand}, {runVm}] = await Promise.all([import('./run-command.js'), import('./run-config.js'), import('./run-vm.js')]);
		await runVm(checkRunCommand(parseRunCommand(build, args)), build, extendedStatus);
		// The VM exits by itself (or hangs); nothing to return.
		return undefined;
	}

	if (name === 'version') {
		parseCommand({flags: [], positionals: [], requiredPositionals: 0, usage: formatUsage('crosvm version', '', 'Show package version', [])}, args);
		process.stdout.write(`crosvm-sim emulating crosvm ${build.dialect} (${build.os}, ${build.arch})\n`);
		return 0;
	}

	const parsed = parseCommand(controlSpec(name), args);
	const {sendControlRequest} = await import('./control-client.js');
	await sendControlRequest(name as (typeof CONTROL_SUBCOMMANDS)[number], parsed.positionals[0]!);
	return 0;
}

async function main(argv: string[]): Promise<number | undefined> {
	let build: SimBuild;
	try {
		build = buildFromEnvironment();
	} catch (error) {
		if (error instanceof SimEnvironmentError) {
			process.stderr.write(`crosvm-sim: ${error.message}\n`);
			return 1;
		}

		throw error;
	}

	try {
		const top = parseCommand(TOP_LEVEL, prepareArguments(argv));
		const level = flagValue<string>(top, '--log-level');
		if (level !== undefined && (LOG_LEVELS as readonly string[]).includes(level)) {
			setLogLevel(level as LogLevel);
		}

		return await subcommand(build, top.subcommand!.name, top.subcommand!.args, hasSwitch(top, '--extended-status'));
	} catch (error) {
		if (error instanceof HelpRequest) {
			process.stdout.write(error.usage);
			return 0;
		}

		if (error instanceof ArgumentError) {
			log('error', `arg parsing failed: ${error.message}`);
			return argumentErrorStatus(build);
		}

		if (error instanceof ConfigurationError) {
			log('error', `exiting with error 1: ${error.message}`);
			return 1;
		}

		log('error', `exiting with error 1: ${(error as Error).stack ?? String(error)}`);
		return 1;
	}
}

const status = await main(process.argv.slice(2));
if (status !== undefined) {
	process.exitCode = status;
}
