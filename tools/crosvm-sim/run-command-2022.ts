import {parseArguments2022, PrintHelp, type Argument2022} from './arguments-2022.js';
import type {SimBuild} from './build.js';
import {parseCpuAffinity} from './cpu-affinity.js';
import {diskParser} from './disk-options.js';
import {ArgumentError, HelpRequest, ValueError} from './failures.js';
import {parseRustUnsigned} from './numbers.js';
import type {RunCommand} from './run-config.js';
import {serialParser} from './serial-options.js';

/**
 * The `crosvm run` arguments of the 2022 build (`run_vm` in src/main.rs at efdcf90a4) that a
 * supervisor uses. `--swiotlb` exists only on aarch64 and `--task-profiles` only on Android: on
 * other builds they are unknown arguments.
 */
export function runArguments2022(build: SimBuild): Argument2022[] {
	const options = ['bios', 'cid', 'cpu-affinity', 'rwdisk', 'serial', 'syslog-tag', 'unprotected-vm-with-firmware'];
	const shortOptions = {i: 'initrd', p: 'params', c: 'cpus', m: 'mem', d: 'disk', s: 'socket'};
	return [
		{long: '', value: 'required'},
		...options.map(long => ({long, value: 'required'} as const)),
		...Object.entries(shortOptions).map(([short, long]) => ({long, short, value: 'required'} as const)),
		...['disable-sandbox', 'protected-vm', 'protected-vm-without-firmware'].map(long => ({long, value: 'disallowed'} as const)),
		...(build.arch === 'aarch64' ? [{long: 'swiotlb', value: 'required'} as const] : []),
		...(build.os === 'android' ? [{long: 'task-profiles', value: 'required'} as const] : []),
		{long: 'help', short: 'h', value: 'disallowed'},
	];
}

function usage(build: SimBuild): string {
	const lines = runArguments2022(build).filter(argument => argument.long !== '').map(({long, short, value}) => `  ${short === undefined ? '    ' : `-${short}, `}--${long}${value === 'required' ? ' VALUE' : ''}`);
	return ['Usage: crosvm run [ARGUMENTS] KERNEL', '', 'Arguments:', ...lines, ''].join('\n');
}

/** Rust's `str::parse` for an integer, with the message `set_argument` gives for a bad one. */
function integer(name: string, value: string, expected = `this value for \`${name}\` needs to be integer`): number {
	try {
		return parseRustUnsigned(value, 64);
	} catch {
		throw new ArgumentError(`invalid value ${JSON.stringify(value)}: ${expected}`);
	}
}

const INTEGER_FIELDS = {cpus: 'cpus', mem: 'memoryMib', swiotlb: 'swiotlbMib'} as const;

/** A value parser's refusal as `set_argument` words it. */
function wrap<T>(parse: () => T, format: (message: string) => string = message => message): T {
	try {
		return parse();
	} catch (error) {
		if (error instanceof ValueError) {
			throw new ArgumentError(format(error.message));
		}

		throw error;
	}
}

/**
 * Parses `crosvm run`'s arguments as the 2022 build did: crosvm's own parser, each argument set
 * as `set_argument` sets it (single-valued ones refuse a second time, `--task-profiles` splits at
 * commas), then `validate_arguments`' check for a kernel. Throws `ArgumentError` or `HelpRequest`.
 */
export function parseRunCommand2022(build: SimBuild, args: readonly string[]): RunCommand {
	const command: RunCommand = {params: [], disks: [], deprecatedDisks: false, serials: [], protectionModes: [], taskProfiles: [], warnings: []};
	const given = new Set<string>();
	const once = (name: string, message = `\`${name}\` already given`): void => {
		if (given.has(name)) {
			throw new ArgumentError(`too many arguments: ${message}`);
		}

		given.add(name);
	};

	const executable = (): void => {
		const previous = command.kernel === undefined ? (command.bios === undefined ? undefined : `Bios("${command.bios}")`) : `Kernel("${command.kernel}")`;
		if (previous !== undefined) {
			throw new ArgumentError(`too many arguments: A VM executable was already specified: Some(${previous})`);
		}
	};

	const parseDisk = {disk: diskParser(build, false), rwdisk: diskParser(build, true)};
	const parseSerial = serialParser(build);
	const set = (name: string, value = ''): void => {
		switch (name) {
			case '': {
				executable();
				command.kernel = value;
				break;
			}

			case 'bios': {
				executable();
				command.bios = value;
				break;
			}

			case 'params': {
				command.params.push(value);
				break;
			}

			case 'cpus':
			case 'mem':
			case 'swiotlb': {
				once(name);
				command[INTEGER_FIELDS[name]] = integer(name, value);
				break;
			}

			case 'cpu-affinity': {
				once(name);
				wrap(() => parseCpuAffinity(value, '2022'));
				break;
			}

			case 'cid': {
				once(name, '`cid` alread given');
				command.cid = integer(name, value, 'this value for `cid` must be an unsigned integer');
				break;
			}

			case 'serial': {
				command.serials.push(wrap(() => parseSerial(value)));
				break;
			}

			case 'disk':
			case 'rwdisk': {
				command.disks.push(wrap(() => parseDisk[name](value), message => `syntax error: while parsing "${name}" parameter: ${message}`));
				break;
			}

			case 'socket':
			case 'syslog-tag': {
				once(name);
				if (name === 'socket') {
					command.socket = value;
				}

				break;
			}

			case 'initrd': {
				command.initrd = value;
				break;
			}

			case 'protected-vm':
			case 'protected-vm-without-firmware':
			case 'unprotected-vm-with-firmware': {
				// The last protection flag wins: the check for a unique one arrived in September 2022.
				command.protectionModes = [`--${name}`];
				break;
			}

			case 'task-profiles': {
				command.taskProfiles.push(...value.split(','));
				break;
			}

			case 'help': {
				throw new PrintHelp();
			}

			default: {
				break;
			}
		}
	};

	try {
		parseArguments2022(args, runArguments2022(build), set);
	} catch (error) {
		if (error instanceof PrintHelp) {
			throw new HelpRequest(usage(build));
		}

		throw error;
	}

	if (command.kernel === undefined && command.bios === undefined) {
		throw new ArgumentError('expected argument: `KERNEL`');
	}

	return command;
}
