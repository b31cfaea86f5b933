/**
 * A fleet of simulated VMs (guests that `hang`) started, held and shut down by a supervisor, against
 * the same number of bare spawns of the same binary, measured in the same run: wall time of each
 * phase, the supervising process's memory per VM, and its event-loop delay.
 *
 * Run: npx tsx bench/fleet.ts [COUNT]   (default 1000, lowered when the machine's memory is short)
 * Needs `npm run build` (dist/crosvm-sim/cli.js).
 */
import {existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join, resolve} from 'node:path';
import {monitorEventLoopDelay, performance} from 'node:perf_hooks';
import {setFlagsFromString} from 'node:v8';
import {runInNewContext} from 'node:vm';
import {execa, type ResultPromise} from 'execa';
import winston from 'winston';
import {createSupervisor} from '../src/supervisor.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const SIM_PATH = process.env['VMWARDEN_TEST_VMM'] ?? resolve('dist/crosvm-sim/cli.js');
const REQUESTED = Number(process.argv[2] ?? 1000);
const HOLD_MS = 2000;

function kib(text: string, field: string): number {
	const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
	return match === null ? 0 : Number(match[1]);
}

/** Proportional set size of a process (its share of shared pages), in KiB. */
function pssKib(pid: number): number {
	return kib(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'), 'Pss');
}

function memAvailableKib(): number {
	return kib(readFileSync('/proc/meminfo', 'utf8'), 'MemAvailable');
}

interface Phases {
	startMs: number;
	shutdownMs: number;
	/** Growth of this process's RSS and heap while holding the fleet, per VM, in KiB. */
	rssPerVmKib: number;
	heapPerVmKib: number;
	loopDelay: {meanMs: number; p99Ms: number; maxMs: number};
}

async function measure(run: () => Promise<{start: () => Promise<void>; stop: () => Promise<void>}>, count: number): Promise<Phases> {
	gc();
	const before = process.memoryUsage();
	const histogram = monitorEventLoopDelay({resolution: 10});
	histogram.enable();
	// The histogram's first timer tick only sets its baseline: a block before it would go unseen.
	await new Promise(resolvePromise => {
		setTimeout(resolvePromise, 50);
	});
	const fleet = await run();
	let time = performance.now();
	await fleet.start();
	const startMs = performance.now() - time;
	await new Promise(resolvePromise => {
		setTimeout(resolvePromise, HOLD_MS);
	});
	gc();
	const held = process.memoryUsage();
	time = performance.now();
	await fleet.stop();
	const shutdownMs = performance.now() - time;
	histogram.disable();
	return {
		startMs,
		shutdownMs,
		rssPerVmKib: (held.rss - before.rss) / 1024 / count,
		heapPerVmKib: (held.heapUsed - before.heapUsed) / 1024 / count,
		loopDelay: {meanMs: histogram.mean / 1e6, p99Ms: histogram.percentile(99) / 1e6, maxMs: histogram.max / 1e6},
	};
}

/** The same work without vmwarden: spawn the binary with a control socket, then `stop` each socket. */
async function bareSpawns(kernel: string, count: number, work: string) {
	const children: ResultPromise[] = [];
	const sockets = Array.from({length: count}, (_, index) => join(work, `bare-${index}.sock`));
	return {
		async start() {
			for (const [index, socket] of sockets.entries()) {
				children.push(execa(SIM_PATH, ['--extended-status', 'run', '--disable-sandbox', '--vsock', `cid=${3 + index}`, '--socket', socket, kernel], {reject: false, stdio: 'ignore'}));
			}

			await Promise.all(children.map(async child => new Promise(resolvePromise => {
				child.once('spawn', resolvePromise);
			})));
		},
		async stop() {
			await Promise.all(sockets.map(async socket => execa(SIM_PATH, ['stop', socket], {reject: false, stdio: 'ignore'})));
			await Promise.all(children);
		},
	};
}

async function supervisedFleet(kernel: string, count: number, tempRoot: string) {
	const supervisor = createSupervisor({crosvmPath: SIM_PATH, tempRoot, logger: winston.createLogger({silent: true}), stopTimeoutMs: 120_000});
	return {
		async start() {
			const vms = await Promise.all(Array.from({length: count}, async () => supervisor.createVm({kernel})));
			await Promise.all(vms.map(async vm => vm.start()));
		},
		async stop() {
			await supervisor.shutdown();
		},
	};
}

async function main(): Promise<void> {
	if (!existsSync(SIM_PATH)) {
		throw new Error(`${SIM_PATH} is missing: run npm run build first`);
	}

	const work = mkdtempSync(join(tmpdir(), 'vmwarden-bench-fleet-'));
	const kernel = join(work, 'guest');
	writeFileSync(kernel, '#!crosvm-sim-guest\npayload started\nhang\n');
	try {
		// One VM first, to see what each costs the machine.
		const supervisor = createSupervisor({crosvmPath: SIM_PATH, tempRoot: work, logger: winston.createLogger({silent: true})});
		const vm = await supervisor.createVm({kernel});
		await vm.start();
		await new Promise(resolvePromise => {
			setTimeout(resolvePromise, 500);
		});
		const perVmKib = pssKib(vm.pid!);
		await supervisor.shutdown();
		const available = memAvailableKib();
		// Two fleets never run at once; keep a third of the memory free for everything else. Each VM
		// counts twice: at shutdown each one also runs a `crosvm-sim stop` (another Node process).
		const fits = Math.floor((available * 2 / 3) / (2 * perVmKib));
		const count = Math.min(REQUESTED, fits);
		console.log(`each simulated VM: ${(perVmKib / 1024).toFixed(1)} MiB PSS; available: ${(available / 1024 / 1024).toFixed(1)} GiB -> room for ${fits}`);
		if (count < REQUESTED) {
			console.log(`${REQUESTED} VMs would not fit in this machine's memory: running ${count}`);
		}

		console.log(`\nfleet of ${count} VMs (guests that hang), held ${HOLD_MS} ms\n`);
		const bare = await measure(async () => bareSpawns(kernel, count, work), count);
		const supervised = await measure(async () => supervisedFleet(kernel, count, work), count);
		const row = (name: string, bareValue: number, supervisedValue: number, unit: string) => {
			console.log(`${name.padEnd(28)} bare ${bareValue.toFixed(1).padStart(9)} ${unit.padEnd(4)} supervised ${supervisedValue.toFixed(1).padStart(9)} ${unit.padEnd(4)} ratio ${(supervisedValue / bareValue).toFixed(2)}x`);
		};

		row('start all (to running)', bare.startMs, supervised.startMs, 'ms');
		row('stop all (to dead)', bare.shutdownMs, supervised.shutdownMs, 'ms');
		row('host RSS per VM', bare.rssPerVmKib, supervised.rssPerVmKib, 'KiB');
		row('host heap per VM', bare.heapPerVmKib, supervised.heapPerVmKib, 'KiB');
		row('event-loop delay mean', bare.loopDelay.meanMs, supervised.loopDelay.meanMs, 'ms');
		row('event-loop delay p99', bare.loopDelay.p99Ms, supervised.loopDelay.p99Ms, 'ms');
		row('event-loop delay max', bare.loopDelay.maxMs, supervised.loopDelay.maxMs, 'ms');
		console.log('\nbare: execa spawns with a control socket, then `stop SOCKET` for each. supervised: createVm + start, then shutdown(), which does the same stops and waits for each exit and cleanup. Memory: growth of this process while holding the fleet (GC noise can make a small figure negative).');
	} finally {
		rmSync(work, {recursive: true, force: true});
	}
}

await main();
