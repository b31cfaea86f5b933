import {resolve} from 'node:path';
import {createVm, DEFAULT_CID_RANGE, loadConfigFile, validateConfig, type ConfigFormat, type FilePolicy, type VmConfig, type VmDeath} from '../index.js';
import {deathJson} from './api/serialize.js';
import {openConsolePipe, type ConsolePipe} from './console-pipe.js';
import {exitStatusOf} from './exit-status.js';
import {stderrLogger} from './logger.js';
import {vmmChoice, type VmmOptions} from './options.js';
import {describeDeath, printLine, printNotice, reportError} from './output.js';

export interface RunOptions extends VmmOptions {
	format: ConfigFormat | 'auto';
	cid?: number;
	console: boolean;
	log?: string;
	detectHangup: boolean;
	bootTimeout?: number;
	stopTimeout?: number;
	json: boolean;
	verbose: boolean;
}

/**
 * `vmwarden run CONFIG`: one VM in the foreground. Loads and validates the config (nothing starts
 * for a bad one), starts the VM, turns the first Ctrl-C (or SIGTERM, SIGHUP) into a graceful stop
 * and the second into a kill, and returns the exit status the death gives (docs/cli.md, "Exit status").
 */
export async function runCommand(file: string, options: RunOptions): Promise<number> {
	// The user runs their own config: the outputs it (or --log) names may be created.
	const filePolicy: FilePolicy = {createOutputs: true};
	let config: VmConfig;
	try {
		({config} = await loadConfigFile(file, {format: options.format === 'auto' ? undefined : options.format, filePolicy}));
		if (options.log !== undefined) {
			config = {...config, logOutput: resolve(options.log)};
		}

		if (options.detectHangup) {
			config = {...config, detectHangup: true};
		}

		validateConfig(config, filePolicy);
	} catch (error) {
		return reportError(error, {json: options.json, file});
	}

	let consolePipe: ConsolePipe | undefined;
	try {
		if (options.console) {
			// On stderr under --json, so that stdout stays one JSON document.
			consolePipe = await openConsolePipe(options.json ? process.stderr : process.stdout);
			config = {...config, consoleOutput: consolePipe.handle};
		}

		return await runVm(config, filePolicy, options);
	} catch (error) {
		return reportError(error, {json: options.json, file});
	} finally {
		await consolePipe?.close();
	}
}

async function runVm(config: VmConfig, filePolicy: FilePolicy, options: RunOptions): Promise<number> {
	const vm = createVm(config, {
		cid: options.cid ?? DEFAULT_CID_RANGE.first,
		...vmmChoice(options),
		logger: stderrLogger(options.verbose ? 'debug' : 'warn'),
		bootHangupTimeoutMs: options.bootTimeout,
		stopTimeoutMs: options.stopTimeout,
		filePolicy,
	});

	let interrupts = 0;
	const interrupt = (signal: NodeJS.Signals) => {
		interrupts += 1;
		if (interrupts === 1) {
			if (!options.json) {
				printNotice(`${signal}: stopping VM ${vm.cid} (Ctrl-C again to kill it)`);
			}

			vm.stop().catch(() => undefined);
		} else {
			if (!options.json) {
				printNotice(`${signal}: killing VM ${vm.cid}`);
			}

			vm.kill();
		}
	};

	// SIGHUP too: a closed terminal must not end the command before its VM is stopped and cleaned up.
	const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
	for (const signal of signals) {
		process.on(signal, interrupt);
	}

	try {
		await vm.start();
		if (!options.json) {
			printNotice(`started VM ${vm.cid} (VMM pid ${vm.pid ?? '?'}); Ctrl-C stops it`);
		}

		// A signal that came while the VM was starting is acted on now that it runs.
		if (interrupts > 0) {
			vm.stop().catch(() => undefined);
		}

		const death: VmDeath = await vm.died;
		const status = exitStatusOf(death);
		if (options.json) {
			printLine(JSON.stringify({cid: death.cid, death: deathJson(death), exitStatus: status}));
		} else {
			for (const line of describeDeath(death)) {
				process.stderr.write(`${line}\n`);
			}
		}

		return status;
	} finally {
		for (const signal of signals) {
			process.off(signal, interrupt);
		}
	}
}
