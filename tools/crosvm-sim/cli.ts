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
import {buildFromEnvironment, PINNED_COMMITS, SimEnvironmentError, type SimBuild} from './build.js';
import {interpretCommandLine} from './command-line.js';
import {ConfigurationError} from './failures.js';
import {log, setLogLevel} from './log.js';

async function execute(build: SimBuild, argv: string[]): Promise<number | undefined> {
	const interpretation = interpretCommandLine(build, argv);
	switch (interpretation.kind) {
		case 'help': {
			process.stdout.write(interpretation.usage);
			return 0;
		}

		case 'refused': {
			if (interpretation.logged) {
				log('error', interpretation.message);
			} else {
				process.stderr.write(`${interpretation.message}\n`);
			}

			return interpretation.status;
		}

		case 'version': {
			process.stdout.write(`crosvm-sim emulating crosvm ${build.dialect} at ${PINNED_COMMITS[build.dialect].commit.slice(0, 9)} (${build.os}, ${build.arch})\n`);
			return 0;
		}

		case 'control': {
			if (interpretation.logLevel !== undefined) {
				setLogLevel(interpretation.logLevel);
			}

			const {sendControlRequest} = await import('./control-client.js');
			await sendControlRequest(interpretation.subcommand, interpretation.socket);
			return 0;
		}

		case 'balloon': {
			if (interpretation.logLevel !== undefined) {
				setLogLevel(interpretation.logLevel);
			}

			const {sendBalloonRequest} = await import('./control-client.js');
			await sendBalloonRequest(interpretation.request, interpretation.socket, build);
			return 0;
		}

		case 'run': {
			if (interpretation.logLevel !== undefined) {
				setLogLevel(interpretation.logLevel);
			}

			for (const warning of interpretation.config.warnings) {
				log('warn', warning);
			}

			const {runVm} = await import('./run-vm.js');
			await runVm(interpretation.config, build, interpretation.extendedStatus);
			// The VM exits by itself (or hangs); nothing to return.
			return undefined;
		}
	}
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
		return await execute(build, argv);
	} catch (error) {
		// Setup errors: today's crosvm logs `exiting with error 1`, the 2022 build `crosvm has exited with error`.
		const prefix = build.dialect === 'aosp-2022' ? 'crosvm has exited with error: ' : 'exiting with error 1: ';
		log('error', `${prefix}${error instanceof ConfigurationError ? error.message : ((error as Error).stack ?? String(error))}`);
		return 1;
	}
}

const status = await main(process.argv.slice(2));
if (status !== undefined) {
	process.exitCode = status;
}
