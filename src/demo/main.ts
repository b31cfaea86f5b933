/**
 * `npm start`: a supervisor runs a small fleet on crosvm-sim whose guests take every path a VM can
 * take, shows their states live, and ends with a table of CID, reason and timings. Exits 0 when every
 * VM ended with its expected reason (and initiator), 1 otherwise.
 *
 * Usage: node dist/demo/main.js [--record FILE]
 */
import {existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {Writable} from 'node:stream';
import {fileURLToPath} from 'node:url';
import {parseArgs} from 'node:util';
import winston from 'winston';
import {createSupervisor, type SupervisedVm, type SupervisorEvent} from '../supervisor.js';
import {LiveTable, rowMatches, summaryTable, type FleetRow} from './display.js';
import {startRecording, type DemoRecording} from './recording.js';
import {SCENARIOS, type Scenario} from './scenarios.js';

/**
 * The simulator beside this compiled file (dist/demo/main.js -> dist/crosvm-sim/cli.js), whatever the cwd;
 * VMWARDEN_DEMO_VMM runs the demo on another build of it.
 */
export const SIM_PATH = process.env['VMWARDEN_DEMO_VMM'] ?? fileURLToPath(new URL('../crosvm-sim/cli.js', import.meta.url));

/** The whole demo must be over by then; a VM still alive is then killed and counted as wrong. */
const DEMO_DEADLINE_MS = 30_000;
const BOOT_HANGUP_TIMEOUT_MS = 1500;

interface LoggedLine {
	level: string;
	message: string;
	label?: string;
}

function collectingLogger(lines: LoggedLine[]): winston.Logger {
	const sink = new Writable({
		objectMode: true,
		write(info: LoggedLine, _encoding, callback) {
			lines.push(info);
			callback();
		},
	});
	return winston.createLogger({level: 'info', transports: [new winston.transports.Stream({stream: sink})]});
}

function describeEvent(event: SupervisorEvent): string {
	switch (event.type) {
		case 'started': {
			return `running, pid ${event.pid}`;
		}

		case 'payload': {
			return `payload ${event.from} -> ${event.to}`;
		}

		case 'payload-refused': {
			return `refused: ${event.message}`;
		}

		case 'hangup': {
			return `no payload within ${event.timeoutMs} ms: hang-up`;
		}

		case 'stopping': {
			return `stop requested (kill after ${event.timeoutMs} ms)`;
		}

		case 'killing': {
			return `killing pid ${event.pid}`;
		}

		case 'died': {
			const {death} = event;
			const failure = death.failureReason === undefined ? '' : ` (${death.failureReason}${death.failureContext === undefined ? '' : `: ${death.failureContext}`})`;
			return `died: ${death.reason}${failure}`;
		}

		case 'failed': {
			return `failed to start: ${event.error.message}`;
		}

		case 'supervisor.cid.allocated': {
			return 'CID allocated';
		}

		case 'supervisor.cid.released': {
			return `CID released (${event.cause})`;
		}

		case 'supervisor.staleVm.reaped': {
			return `stale VM pid ${event.pid}: ${event.outcome}`;
		}

		case 'supervisor.state.writeFailed': {
			return `could not write ${event.write} to the state directory: ${event.cause}`;
		}

		case 'supervisor.shutdown.started': {
			return `shutdown: stopping ${event.vms} VM(s)`;
		}

		case 'supervisor.shutdown.completed': {
			return 'shutdown complete';
		}

		case 'supervisor.restart.scheduled': {
			return `restart #${event.attempt} in ${event.delayMs} ms (${event.reason})`;
		}

		case 'supervisor.restart.restarted': {
			return `restarted (${event.restarts} so far)`;
		}

		case 'supervisor.restart.reset': {
			return `ran healthily for ${event.healthyMs} ms: backoff reset`;
		}

		case 'supervisor.restart.gaveUp': {
			return `gave up: ${event.restarts} restarts, at most ${event.maxRestarts} within ${event.windowMs} ms (${event.reason})`;
		}

		case 'supervisor.restart.cancelled': {
			return `restart cancelled after ${event.restarts} restart(s)`;
		}

		case 'supervisor.group.gaveUp': {
			return `group ${event.group} gave up: ${event.restarts} restarts, at most ${event.maxRestarts} within ${event.windowMs} ms (${event.reason} of ${event.cid})`;
		}

		case 'supervisor.group.restartScheduled': {
			return `group ${event.group} (${event.strategy}): ${event.cid} ${event.reason}, restarting ${event.members.join(', ')} in ${event.delayMs} ms`;
		}

		case 'supervisor.group.restarted': {
			return `group ${event.group} restarted ${event.members.join(', ')}`;
		}

		case 'supervisor.group.memberLeft': {
			return `left group ${event.group} (${event.outcome})`;
		}
	}
}

/** Waits `ms`; an `unref`ed wait does not keep the process alive (for deadlines that may never matter). */
async function delay(ms: number, {unref = false} = {}): Promise<void> {
	return new Promise(resolve => {
		const timer = setTimeout(resolve, ms);
		if (unref) {
			timer.unref();
		}
	});
}

/** Runs the demo; resolves with the exit code. */
export async function runDemo(argv: string[], out: NodeJS.WriteStream = process.stdout): Promise<number> {
	const {values} = parseArgs({args: argv, options: {record: {type: 'string'}, help: {type: 'boolean'}}});
	if (values.help) {
		out.write('Usage: node dist/demo/main.js [--record FILE]\n');
		return 0;
	}

	if (!existsSync(SIM_PATH)) {
		out.write(`crosvm-sim not found at ${SIM_PATH}: run npm run build first\n`);
		return 1;
	}

	const tty = out.isTTY === true;
	const work = mkdtempSync(join(tmpdir(), 'vmwarden-demo-'));
	const scripts = join(work, 'guests');
	const tempRoot = join(work, 'vms');
	mkdirSync(scripts);
	mkdirSync(tempRoot);
	const logLines: LoggedLine[] = [];
	let recording: DemoRecording | undefined;
	try {
		recording = values.record === undefined ? undefined : startRecording(values.record);
		const supervisor = createSupervisor({
			crosvmPath: SIM_PATH,
			dialect: 'current',
			tempRoot,
			stateDir: join(work, 'state'),
			logger: collectingLogger(logLines),
			bootHangupTimeoutMs: BOOT_HANGUP_TIMEOUT_MS,
			stopTimeoutMs: 3000,
			inspect: recording?.inspect,
		});
		const started = Date.now();
		const rows = new Map<number, FleetRow>();
		const table = new LiveTable(text => out.write(text), () => out.columns ?? 80);
		let footer = `supervisor on ${SIM_PATH}`;
		const redraw = () => {
			if (tty) {
				table.draw([...rows.values()], Date.now(), footer);
			}
		};

		supervisor.events$.subscribe(event => {
			const cid = 'cid' in event ? event.cid : undefined;
			const row = cid === undefined ? undefined : rows.get(cid);
			const description = describeEvent(event);
			if (row !== undefined) {
				const vm = supervisor.get(row.cid);
				row.state = vm?.state ?? row.state;
				row.payloadState = vm?.payloadState ?? row.payloadState;
				// The death says more than the release that follows it.
				if (event.type !== 'supervisor.cid.released') {
					row.lastEvent = `${description} [${event.initiator}]`;
				}

				if (event.type === 'started') {
					row.runningAt = Date.now();
				} else if (event.type === 'died') {
					row.state = 'Dead';
					row.diedAt = Date.now();
					row.reason = event.death.reason;
					row.initiator = event.death.initiator;
					row.payloadState = event.death.payloadState;
				} else if (event.type === 'supervisor.restart.restarted') {
					row.restarts = event.restarts;
				} else if (event.type === 'failed') {
					row.state = 'Failed';
					row.diedAt = Date.now();
				}
			} else if (cid === undefined) {
				footer = description;
			}

			if (tty) {
				redraw();
			} else {
				const who = cid === undefined ? 'supervisor' : `cid ${cid}${row === undefined ? '' : ` (${row.scenario.name})`}`;
				out.write(`+${((Date.now() - started) / 1000).toFixed(3)}s ${who}: ${description} [by ${event.initiator}]\n`);
			}
		});
		const ticker = tty ? setInterval(redraw, 200) : undefined;
		// Ctrl-C stops the fleet properly (the VMs would die with the process anyway, by their
		// parent-death signal, but their temporary directories would stay).
		const interrupt = () => {
			footer = 'interrupted: shutting down';
			void supervisor.shutdown({stopTimeoutMs: 500});
		};

		process.once('SIGINT', interrupt);

		// The requests go out in order, so the CIDs follow the scenarios.
		const fleet: Array<{scenario: Scenario; vm: SupervisedVm}> = await Promise.all(SCENARIOS.map(async (scenario, index) => {
			const kernel = join(scripts, `guest-${index}`);
			writeFileSync(kernel, ['#!crosvm-sim-guest', ...scenario.guest, ''].join('\n'));
			const vm = await supervisor.createVm({kernel, detectHangup: scenario.detectHangup ?? false}, {restartPolicy: scenario.restartPolicy});
			const {recoverAfter} = scenario;
			if (recoverAfter !== undefined) {
				let deaths = 0;
				vm.onDeath(() => {
					if (++deaths === recoverAfter.deaths) {
						writeFileSync(kernel, ['#!crosvm-sim-guest', ...recoverAfter.guest, ''].join('\n'));
					}
				});
			}

			rows.set(vm.cid, {scenario, cid: vm.cid, state: vm.state, payloadState: vm.payloadState, lastEvent: 'created', createdAt: Date.now(), runningAt: undefined, diedAt: undefined, reason: undefined, initiator: undefined, failure: undefined, restarts: 0});
			return {scenario, vm};
		}));
		redraw();

		const outcomes = await Promise.allSettled(fleet.map(async ({vm}) => vm.start()));
		for (const [index, outcome] of outcomes.entries()) {
			if (outcome.status === 'rejected') {
				rows.get(fleet[index]!.vm.cid)!.failure = String(outcome.reason);
			}
		}

		for (const {scenario, vm} of fleet) {
			const {host} = scenario;
			if (host.kind === 'stop') {
				setTimeout(() => void vm.stop({timeoutMs: host.timeoutMs}), host.afterMs).unref();
			} else if (host.kind === 'kill') {
				setTimeout(() => {
					vm.kill();
				}, host.afterMs).unref();
			}
		}

		// Everything but the VMs left for the shutdown ends on its own (or by the demo's stop and kill).
		const ending = fleet.filter(({scenario, vm}) => scenario.host.kind !== 'shutdown' && vm.state !== 'Failed').map(async ({vm}) => vm.died);
		const finished = await Promise.race([Promise.all(ending).then(() => true), delay(DEMO_DEADLINE_MS, {unref: true}).then(() => false)]);
		if (!finished) {
			footer = `deadline of ${DEMO_DEADLINE_MS} ms passed: shutting down`;
		}

		await delay(300);
		await supervisor.shutdown({stopTimeoutMs: finished ? 3000 : 500});
		if (ticker !== undefined) {
			clearInterval(ticker);
		}

		process.off('SIGINT', interrupt);

		redraw();
		const finalRows = [...rows.values()];
		out.write(`\n${summaryTable(finalRows, tty)}\n`);
		const wrong = finalRows.filter(row => !rowMatches(row));
		for (const row of wrong) {
			const ended = row.reason === undefined ? 'without a death' : `${row.reason} by ${row.initiator ?? '?'}`;
			out.write(`cid ${row.cid} (${row.scenario.name}) ended ${ended}, expected ${row.scenario.expected} by ${row.scenario.expectedInitiator}${row.failure === undefined ? '' : `: ${row.failure}`}\n`);
		}

		if (wrong.length > 0) {
			for (const line of logLines.filter(entry => entry.level === 'error' || entry.level === 'warn')) {
				out.write(`log ${line.level} [${line.label ?? 'vmwarden'}] ${line.message}\n`);
			}
		}

		if (recording !== undefined) {
			out.write(`${recording.describe()}\n`);
		}

		out.write(wrong.length === 0 ? `\nAll ${finalRows.length} VMs ended as expected in ${((Date.now() - started) / 1000).toFixed(1)} s.\n` : `\n${wrong.length} of ${finalRows.length} VMs did not end as expected.\n`);
		return wrong.length === 0 ? 0 : 1;
	} finally {
		await recording?.finish();
		rmSync(work, {recursive: true, force: true});
	}
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
	runDemo(process.argv.slice(2)).then(code => {
		process.exitCode = code;
	}, (error: unknown) => {
		console.error(error instanceof Error ? error.message : error);
		process.exitCode = 1;
	});
}
