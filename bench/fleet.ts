/**
 * A fleet of VMs on the light stand-in (bench/stand-in/), started, held and shut down by a
 * supervisor, against the same number of bare execa spawns of the same binary with the same control
 * socket, measured in the same run: wall time and throughput of each phase, this process's memory
 * and descriptors per VM, its event-loop delay, and what is left afterwards.
 *
 * Run: `npm run bench:fleet` (COUNT=1000 by default). Not a test: it prints a table.
 */
import {mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs';
import {join} from 'node:path';
import {performance} from 'node:perf_hooks';
import {setImmediate as nextTurn} from 'node:timers/promises';
import {setFlagsFromString} from 'node:v8';
import {runInNewContext} from 'node:vm';
import {execa, type ResultPromise} from 'execa';
import winston from 'winston';
import {createSupervisor} from '../src/supervisor.js';
import type {Vm} from '../src/vm.js';
import {benchRoot, standInPath} from './stand-in.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const COUNT = Number(process.env['COUNT'] ?? 1000);
const HOLD_MS = 2000;

interface Fleet {
	start(): Promise<void>;
	stop(): Promise<void>;
}

interface LoopDelay {
	meanMs: number;
	p99Ms: number;
	maxMs: number;
}

/**
 * The event loop's delay as a 1 ms timer sees it: how late each firing is. Unlike Node's
 * monitorEventLoopDelay, a single block of seconds (the bare side's synchronous start) counts too.
 */
class LagProbe {
	readonly #lags: number[] = [];
	#timer: NodeJS.Timeout | undefined;
	#last = 0;

	start(): void {
		this.#last = performance.now();
		const tick = () => {
			const now = performance.now();
			this.#lags.push(Math.max(0, now - this.#last - 1));
			this.#last = now;
			this.#timer = setTimeout(tick, 1);
		};

		this.#timer = setTimeout(tick, 1);
	}

	/** Stops and gives what it saw since `start`. */
	stop(): LoopDelay {
		clearTimeout(this.#timer);
		// A block still running when the phase ended counts up to now.
		this.#lags.push(Math.max(0, performance.now() - this.#last - 1));
		const sorted = this.#lags.splice(0).sort((a, b) => a - b);
		return {
			meanMs: sorted.reduce((sum, lag) => sum + lag, 0) / sorted.length,
			p99Ms: sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))]!,
			maxMs: sorted.at(-1)!,
		};
	}
}

interface Phases {
	startMs: number;
	stopMs: number;
	/** Growth of this process while holding the fleet, per VM. */
	rssPerVmKib: number;
	heapPerVmKib: number;
	descriptorsPerVm: number;
	loopDelay: LoopDelay;
	/** The same, while starting only, while holding the fleet and while stopping only. */
	startDelay: LoopDelay;
	holdDelay: LoopDelay;
	stopDelay: LoopDelay;
	/** Processes and temporary entries still there after the stop. */
	leftBehind: number;
}

const openDescriptorCount = () => readdirSync('/proc/self/fd').length;

/** Live children of this process (zombies count: nobody reaped them). */
function childCount(): number {
	let count = 0;
	for (const entry of readdirSync('/proc')) {
		if (/^\d+$/.test(entry)) {
			try {
				const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
				if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === process.pid) {
					count++;
				}
			} catch {
				// Gone meanwhile.
			}
		}
	}

	return count;
}

async function sleep(ms: number): Promise<void> {
	await new Promise(resolve => {
		setTimeout(resolve, ms);
	});
}

async function measure(makeFleet: () => Fleet, tempRoot: string): Promise<Phases> {
	gc();
	const before = process.memoryUsage();
	const descriptorsBefore = openDescriptorCount();
	const childrenBefore = childCount();
	const entriesBefore = readdirSync(tempRoot).length;
	const probe = new LagProbe();
	const fleet = makeFleet();
	probe.start();
	let time = performance.now();
	await fleet.start();
	const startMs = performance.now() - time;
	const startDelay = probe.stop();
	probe.start();
	await sleep(HOLD_MS);
	const holdDelay = probe.stop();
	// The benchmark's own forced collection is not counted: it is between two phases.
	gc();
	const held = process.memoryUsage();
	const descriptorsHeld = openDescriptorCount();
	probe.start();
	time = performance.now();
	await fleet.stop();
	const stopMs = performance.now() - time;
	const stopDelay = probe.stop();
	// What is left is what a moment later is still there (a reaped child may lag by a tick).
	await sleep(500);
	return {
		startMs,
		stopMs,
		rssPerVmKib: (held.rss - before.rss) / 1024 / COUNT,
		heapPerVmKib: (held.heapUsed - before.heapUsed) / 1024 / COUNT,
		descriptorsPerVm: (descriptorsHeld - descriptorsBefore) / COUNT,
		// The whole run is the three phases (not the benchmark's own forced collection between them):
		// the worst of their means, p99s and maxima.
		loopDelay: {
			meanMs: Math.max(startDelay.meanMs, holdDelay.meanMs, stopDelay.meanMs),
			p99Ms: Math.max(startDelay.p99Ms, holdDelay.p99Ms, stopDelay.p99Ms),
			maxMs: Math.max(startDelay.maxMs, holdDelay.maxMs, stopDelay.maxMs),
		},
		startDelay,
		holdDelay,
		stopDelay,
		leftBehind: Math.max(0, childCount() - childrenBefore) + Math.max(0, readdirSync(tempRoot).length - entriesBefore),
	};
}

/** The same work without vmwarden: spawn the binary with a control socket, then `stop` each socket. */
function bareFleet(vmm: string, kernel: string, work: string): Fleet {
	const children: ResultPromise[] = [];
	const sockets = Array.from({length: COUNT}, (_, index) => join(work, `bare-${index}.sock`));
	return {
		async start() {
			for (const [index, socket] of sockets.entries()) {
				children.push(execa(vmm, ['--extended-status', 'run', '--disable-sandbox', '--vsock', `cid=${3 + index}`, '--socket', socket, kernel], {reject: false, stdio: 'ignore'}));
			}

			await Promise.all(children.map(async child => new Promise(resolve => {
				child.once('spawn', resolve);
			})));
		},
		async stop() {
			await Promise.all(sockets.map(async socket => execa(vmm, ['stop', socket], {reject: false, stdio: 'ignore'})));
			await Promise.all(children);
		},
	};
}

function supervisedFleet(vmm: string, kernel: string, tempRoot: string): Fleet {
	const supervisor = createSupervisor({crosvmPath: vmm, tempRoot, logger: winston.createLogger({silent: true}), stopTimeoutMs: 120_000});
	return {
		async start() {
			// Creating a supervised VM (its actor) is the caller's work: ten per event-loop turn.
			const vms: Vm[] = [];
			for (let index = 0; index < COUNT; index++) {
				vms.push(await supervisor.createVm({kernel}));
				if (index % 10 === 9) {
					await nextTurn();
				}
			}

			// Every start in one tick, as the bare side spawns: vmwarden spreads the work.
			await Promise.all(vms.map(async vm => vm.start()));
		},
		async stop() {
			await supervisor.shutdown();
		},
	};
}

function row(name: string, bare: number, supervised: number, unit: string, digits = 1): void {
	const ratio = bare === 0 ? '' : `ratio ${(supervised / bare).toFixed(2)}x`;
	console.log(`${name.padEnd(26)} bare ${bare.toFixed(digits).padStart(9)} ${unit.padEnd(5)} supervised ${supervised.toFixed(digits).padStart(9)} ${unit.padEnd(5)} ${ratio}`);
}

async function main(): Promise<void> {
	const vmm = standInPath();
	const work = mkdtempSync(join(benchRoot(), 'vmwarden-bench-fleet-'));
	const kernel = join(work, 'kernel');
	writeFileSync(kernel, 'not booted by the stand-in\n');
	try {
		console.log(`fleet of ${COUNT} VMs on ${vmm}, held ${HOLD_MS} ms; ${readFileSync('/proc/loadavg', 'utf8').trim()} (load before)\n`);
		const bareDir = mkdtempSync(join(work, 'bare-'));
		const bare = await measure(() => bareFleet(vmm, kernel, bareDir), bareDir);
		const supervisedDir = mkdtempSync(join(work, 'supervised-'));
		const supervised = await measure(() => supervisedFleet(vmm, kernel, supervisedDir), supervisedDir);
		row('start all (to running)', bare.startMs, supervised.startMs, 'ms');
		row('start throughput', COUNT / bare.startMs * 1000, COUNT / supervised.startMs * 1000, 'VM/s');
		row('stop all (to dead)', bare.stopMs, supervised.stopMs, 'ms');
		row('host RSS growth per VM', bare.rssPerVmKib, supervised.rssPerVmKib, 'KiB');
		row('host heap growth per VM', bare.heapPerVmKib, supervised.heapPerVmKib, 'KiB');
		row('host descriptors per VM', bare.descriptorsPerVm, supervised.descriptorsPerVm, '', 2);
		row('event-loop delay mean*', bare.loopDelay.meanMs, supervised.loopDelay.meanMs, 'ms', 2);
		row('event-loop delay p99*', bare.loopDelay.p99Ms, supervised.loopDelay.p99Ms, 'ms', 2);
		row('event-loop delay max*', bare.loopDelay.maxMs, supervised.loopDelay.maxMs, 'ms', 2);
		row('  while starting: p99', bare.startDelay.p99Ms, supervised.startDelay.p99Ms, 'ms', 2);
		row('  while starting: max', bare.startDelay.maxMs, supervised.startDelay.maxMs, 'ms', 2);
		row('  while holding: p99', bare.holdDelay.p99Ms, supervised.holdDelay.p99Ms, 'ms', 2);
		row('  while holding: max', bare.holdDelay.maxMs, supervised.holdDelay.maxMs, 'ms', 2);
		row('  while stopping: p99', bare.stopDelay.p99Ms, supervised.stopDelay.p99Ms, 'ms', 2);
		row('  while stopping: max', bare.stopDelay.maxMs, supervised.stopDelay.maxMs, 'ms', 2);
		row('left behind', bare.leftBehind, supervised.leftBehind, '', 0);
		console.log(`\nbare: execa spawns of the stand-in with a control socket (running once spawned), then \`stop SOCKET\` for each. supervised: createVm for each (ten per turn), start() for all in one tick (running once spawned), then shutdown(), which stops each VM through its control socket and waits for its death and cleanup. Memory and descriptors: growth of this process while holding the fleet (GC noise can make a small figure negative). *: the worst of the three phases.`);
	} finally {
		rmSync(work, {recursive: true, force: true});
	}
}

await main();
