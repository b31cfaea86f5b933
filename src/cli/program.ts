import {Command, CommanderError, Option} from 'commander';
import {CONFIG_FORMATS, publishedSchemas, type ConfigFormat} from '../index.js';
import {openApiDocument} from './api/openapi.js';
import {consoleCommand, eventsCommand, infoCommand, killCommand, listCommand, startCommand, stopCommand} from './clients.js';
import {EXIT_STATUS} from './exit-status.js';
import {integer, vmmOptions} from './options.js';
import {printLine, printNotice} from './output.js';
import {runCommand, type RunOptions} from './run.js';
import type {ServeOptions} from './serve.js';
import {defaultSocketPath} from './socket.js';

const MAX_MS = 2_147_483_647;
const cid = integer(3, 0xFF_FF_FF_FE);

function socketOption(): Option {
	const fallback = defaultSocketPath();
	const option = new Option('--socket <path>', 'the daemon\'s unix socket');
	return fallback === undefined ? option : option.default(fallback);
}

/** The socket a command was given, or a clear error when there is no default to fall back on. */
function socketOf(options: {socket?: string}): string {
	if (options.socket === undefined) {
		throw new CommanderError(EXIT_STATUS.usage, 'vmwarden.noSocket', 'error: no socket: XDG_RUNTIME_DIR is not set, so name one with --socket');
	}

	return options.socket;
}

function addVmmOptions(command: Command): Command {
	for (const option of vmmOptions()) {
		command.addOption(option);
	}

	return command;
}

/** Builds the `vmwarden` program; each action stores its exit status in `result.status`. */
export function buildProgram(result: {status: number}): Command {
	const program = new Command('vmwarden')
		.description('Run a crosvm or QEMU VM from a config file, or serve a host\'s fleet over a local API.')
		.version('0.1.0')
		.exitOverride()
		.showHelpAfterError();

	addVmmOptions(program.command('run')
		.description('Run one VM in the foreground until it dies; Ctrl-C stops it, a second Ctrl-C kills it.')
		.argument('<config>', 'a JSON config: vmwarden\'s format or Android\'s vm_config.json')
		.addOption(new Option('--format <format>', 'the config\'s format').choices(['auto', ...CONFIG_FORMATS]).default('auto'))
		.option('--cid <cid>', 'the guest\'s vsock CID (default 2048)', cid)
		.option('--console', 'show the guest console on this terminal', false)
		.option('--log <file>', 'append the guest log to FILE (created if missing)')
		.option('--detect-hangup', 'kill the VM when its payload has not started within the boot timeout', false)
		.option('--boot-timeout <ms>', 'the boot hang-up timeout (default 10 s, 100 s nested)', integer(0, MAX_MS))
		.option('--stop-timeout <ms>', 'how long Ctrl-C waits before killing (default 5 s)', integer(0, MAX_MS))
		.option('--json', 'print one JSON object: the death and the exit status', false)
		.option('-v, --verbose', 'log what vmwarden does, on stderr', false))
		.action(async (file: string, options: RunOptions) => {
			result.status = await runCommand(file, options);
		});

	addVmmOptions(program.command('serve')
		.description('Supervise VMs as a daemon, with an HTTP/JSON API on a unix socket (docs/api.md).')
		.addOption(socketOption())
		.option('--socket-group <group>', 'let this group use the socket too (mode 0660)')
		.option('--state-dir <dir>', 'keep the last CID and VM records here, to reap them after a crash')
		.option('--allow-dir <dir>', 'configs may only name files under DIR (repeatable)', (value: string, previous: string[]) => [...previous, value], [])
		.option('--create-outputs', 'let configs create their console and log files', false)
		.option('--cid-first <cid>', 'the first CID to hand out (default 2048)', cid)
		.option('--cid-last <cid>', 'the last CID to hand out (default 65535)', cid)
		.option('--boot-timeout <ms>', 'the boot hang-up timeout', integer(0, MAX_MS))
		.option('--stop-timeout <ms>', 'how long a stop waits before killing (default 5 s)', integer(0, MAX_MS))
		.option('-v, --verbose', 'log debug lines', false))
		.action(async (options: Omit<ServeOptions, 'socket'> & {socket?: string}) => {
			// Loaded here: fastify is for the daemon only, and every other command starts faster without it.
			const {serveCommand} = await import('./serve.js');
			result.status = await serveCommand({...options, socket: socketOf(options)});
		});

	const clientCommand = (name: string, description: string) => program.command(name).description(description).addOption(socketOption()).option('--json', 'print JSON', false);
	clientCommand('list', 'List the daemon\'s VMs.').action(async (options: {socket?: string; json: boolean}) => {
		result.status = await listCommand({...options, socket: socketOf(options)});
	});
	clientCommand('start', 'Send a config file to the daemon, which creates and starts the VM.').argument('<config>', 'a JSON config: vmwarden\'s format or Android\'s vm_config.json')
		.addOption(new Option('--format <format>', 'the config\'s format').choices(['auto', ...CONFIG_FORMATS]).default('auto'))
		.option('--no-payload-channel', 'do not give the guest the payload report channel')
		.option('--no-capture-console', 'do not capture the guest console (no `vmwarden console` for it)')
		.action(async (file: string, options: {socket?: string; json: boolean; format: ConfigFormat | 'auto'; payloadChannel: boolean; captureConsole: boolean}) => {
			result.status = await startCommand(file, {...options, socket: socketOf(options)});
		});
	clientCommand('info', 'Show one VM: its state, and its death once dead.').argument('<cid>', 'the VM\'s CID', cid).action(async (vmCid: number, options: {socket?: string; json: boolean}) => {
		result.status = await infoCommand(vmCid, {...options, socket: socketOf(options)});
	});
	clientCommand('stop', 'Stop a VM gracefully (killed after the timeout) and show its death.').argument('<cid>', 'the VM\'s CID', cid)
		.option('--timeout <ms>', 'how long to wait before killing (default: the daemon\'s)', integer(0, MAX_MS))
		.action(async (vmCid: number, options: {socket?: string; json: boolean; timeout?: number}) => {
			result.status = await stopCommand(vmCid, {...options, socket: socketOf(options)});
		});
	clientCommand('kill', 'Kill a VM and show its death.').argument('<cid>', 'the VM\'s CID', cid).action(async (vmCid: number, options: {socket?: string; json: boolean}) => {
		result.status = await killCommand(vmCid, {...options, socket: socketOf(options)});
	});
	clientCommand('console', 'Show a VM\'s console: the last lines, then the guest\'s output as it comes, until the VM dies.').argument('<cid>', 'the VM\'s CID', cid).action(async (vmCid: number, options: {socket?: string; json: boolean}) => {
		result.status = await consoleCommand(vmCid, {...options, socket: socketOf(options)});
	});
	clientCommand('events', 'Follow the daemon\'s events until it shuts down.').option('--cid <cid>', 'only this VM\'s events', cid).action(async (options: {socket?: string; json: boolean; cid?: number}) => {
		result.status = await eventsCommand({...options, socket: socketOf(options)});
	});

	program.command('schema').description('Print the JSON Schema of a config format.')
		.addOption(new Option('--format <format>', 'which format').choices([...CONFIG_FORMATS]).default('vmwarden'))
		.action((options: {format: string}) => {
			const schemas = publishedSchemas();
			printLine(JSON.stringify(schemas[options.format === 'android' ? 'android-vm-config.schema.json' : 'vmwarden-config.schema.json'], undefined, '\t'));
		});
	program.command('openapi').description('Print the OpenAPI document of the daemon\'s API.').action(() => {
		printLine(JSON.stringify(openApiDocument(), undefined, '\t'));
	});
	return program;
}

/** Runs `vmwarden` with `argv` (as `process.argv`) and resolves with its exit status. */
export async function main(argv: readonly string[]): Promise<number> {
	const result = {status: EXIT_STATUS.ok as number};
	try {
		await buildProgram(result).parseAsync(argv);
		return result.status;
	} catch (error) {
		if (error instanceof CommanderError) {
			if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.code === 'commander.help') {
				return EXIT_STATUS.ok;
			}

			if (error.code === 'vmwarden.noSocket') {
				printNotice(error.message.replace(/^error: /, ''));
			}

			return EXIT_STATUS.usage;
		}

		throw error;
	}
}
