/**
 * A fleet of VMs on the light stand-in (bench/stand-in/), started, held and shut down by a
 * supervisor, against the same number of bare execa spawns of the same binary with the same control
 * socket, measured in the same run: wall time and throughput of each phase, this process's memory
 * and descriptors per VM, its event-loop delay, and what is left afterwards.
 *
 * Run: `npm run bench:fleet` (builds the package first; COUNT=1000 by default; ROUNDS rounds of
 * bare then supervised, 3 by default up to 2,000 VMs and 1 above). Not a test: it prints a table of
 * medians over the rounds.
 */
import {mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync, writeFileSync} from 'node:fs';
import {join} from 'node:path';
import {performance} from 'node:perf_hooks';
import {setImmediate as nextTurn} from 'node:timers/promises';
import {setFlagsFromString} from 'node:v8';
import {runInNewContext} from 'node:vm';
import {execa, type ResultPromise} from 'execa';
import winston from 'winston';
// The compiled package, as a host runs it: under tsx every named closure of the library would carry
// an extra `name` property (esbuild's keepNames), about 2.3 KiB and nine objects more per VM.
import {createSupervisor, type Vm} from '../dist/index.js';
import {benchRoot, standInPath} from './stand-in.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const COUNT = Number(process.env['COUNT'] ?? 1000);
// On a shared machine the load drifts over a run: alternating the sides and taking medians keeps
// one unlucky minute from deciding a ratio.
const ROUNDS = Number(process.env['ROUNDS'] ?? (COUNT <= 2000 ? 3 : 1));
const HOLD_MS = 2000;

interface Fleet {
	start(): Promise<void>;
	stop(): Promise<void>;
}

/** The 99th percentile and the maximum of a set of delays. */
interface Spread {
	p99Ms: number;
	maxMs: number;
}

interface LoopDelay {
	meanMs: number;
	delay: Spread;
	/** The same for the part of each delay the main thread was on a CPU (see LagProbe). */
	busy: Spread;
	/** The same for the part of each delay the main thread was ready to run but waited for a CPU. */
	wait: Spread;
	/** When the longest delay began, in milliseconds from the start of its phase. */
	worstAtMs: number;
}

/**
 * The main thread's time on a CPU and its time waiting for one in the run queue, in milliseconds,
 * from Linux's /proc/thread-self/schedstat (nanoseconds). The wait is exact; the time on a CPU is
 * brought up to date at the scheduler's events and ticks only (4 ms at HZ=250), so each reading of
 * it is up to one tick behind. Without schedstats (no file, or a kernel that keeps none and prints
 * zeros), the whole process's CPU time and no waiting.
 */
class MainThreadClock {
	readonly #fd = (() => {
		try {
			return openSync('/proc/thread-self/schedstat', 'r');
		} catch {
			return undefined;
		}
	})();

	readonly #buffer = Buffer.alloc(96);

	/** Whether the kernel keeps schedstats: a thread that ran has spent time on a CPU. */
	readonly #kept = this.#schedstat()?.runMs !== 0;

	read(): {runMs: number; waitMs: number} {
		const schedstat = this.#kept ? this.#schedstat() : undefined;
		if (schedstat === undefined) {
			const {user, system} = process.cpuUsage();
			return {runMs: (user + system) / 1000, waitMs: 0};
		}

		return schedstat;
	}

	#schedstat(): {runMs: number; waitMs: number} | undefined {
		if (this.#fd === undefined) {
			return undefined;
		}

		const length = readSync(this.#fd, this.#buffer, 0, this.#buffer.length, 0);
		const [run, wait] = this.#buffer.toString('latin1', 0, length).split(' ');
		return {runMs: Number(run) / 1e6, waitMs: Number(wait) / 1e6};
	}
}

/** The spread of `values`, which it empties. */
function spreadOf(values: number[]): Spread {
	const sorted = values.splice(0).sort((a, b) => a - b);
	return {p99Ms: sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))]!, maxMs: sorted.at(-1)!};
}

/** The worst of several spreads: their highest p99 and their highest maximum. */
function worstOf(spreads: Spread[]): Spread {
	return {p99Ms: Math.max(...spreads.map(spread => spread.p99Ms)), maxMs: Math.max(...spreads.map(spread => spread.maxMs))};
}

/**
 * The event loop's delay as a 1 ms timer sees it: how late each firing is. Unlike Node's
 * monitorEventLoopDelay, a single block of seconds (the bare side's synchronous start) counts too.
 * Each delay is also split in two: the main thread's time on a CPU over the interval (this process's
 * code and the garbage collector's work on the main thread: what the host itself spends) and its time
 * ready to run but waiting for a CPU (the scheduler gave the CPUs to other threads and processes).
 */
class LagProbe {
	readonly #clock = new MainThreadClock();
	readonly #lags: number[] = [];
	readonly #busy: number[] = [];
	readonly #waits: number[] = [];
	#timer: NodeJS.Timeout | undefined;
	#last = 0;
	#lastClock = {runMs: 0, waitMs: 0};
	#startedAt = 0;
	#worst = {lagMs: -1, atMs: 0};

	start(): void {
		this.#last = performance.now();
		this.#startedAt = this.#last;
		this.#worst = {lagMs: -1, atMs: 0};
		this.#lastClock = this.#clock.read();
		const tick = () => {
			this.#record();
			this.#timer = setTimeout(tick, 1);
		};

		this.#timer = setTimeout(tick, 1);
	}

	/** Stops and gives what it saw since `start`. */
	stop(): LoopDelay {
		clearTimeout(this.#timer);
		// A block still running when the phase ended counts up to now.
		this.#record();
		const meanMs = this.#lags.reduce((sum, lag) => sum + lag, 0) / this.#lags.length;
		return {meanMs, delay: spreadOf(this.#lags), busy: spreadOf(this.#busy), wait: spreadOf(this.#waits), worstAtMs: this.#worst.atMs};
	}

	#record(): void {
		const now = performance.now();
		const clock = this.#clock.read();
		const lag = Math.max(0, now - this.#last - 1);
		this.#lags.push(lag);
		if (lag > this.#worst.lagMs) {
			this.#worst = {lagMs: lag, atMs: this.#last - this.#startedAt};
		}

		// The timer's own millisecond is not a delay: neither part counts it.
		this.#busy.push(Math.min(lag, Math.max(0, clock.runMs - this.#lastClock.runMs - 1)));
		this.#waits.push(Math.min(lag, Math.max(0, clock.waitMs - this.#lastClock.waitMs)));
		this.#last = now;
		this.#lastClock = clock;
	}
}

/** Which phase of which round held the longest delay, and how far into the phase it began. */
function whereWorst(sides: Phases[]): string {
	const phases = sides.flatMap((side, round) => (['start', 'hold', 'stop'] as const).map(name => ({round, name, delay: side[`${name}Delay`]})));
	const worst = phases.reduce((found, phase) => (phase.delay.delay.maxMs > found.delay.delay.maxMs ? phase : found));
	const verb = {start: 'starting', hold: 'holding', stop: 'stopping'}[worst.name];
	return `round ${worst.round + 1}, while ${verb}, ${(worst.delay.worstAtMs / 1000).toFixed(1)} s into it`;
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

/**
 * How long the benchmark lets its own forced collection finish before a phase is watched: V8 sweeps
 * and frees what a full collection found on its worker threads afterwards, and the main thread's
 * first allocations wait for that sweeping. Without this pause the first turn of the stop took
 * 59-60 ms at 10,000 VMs (the longest delay of two runs), where a run without the forced collection
 * takes about 20 ms there: the benchmark's own cost, which no host pays.
 */
const AFTER_FORCED_GC_MS = 250;

async function measure(makeFleet: () => Fleet, tempRoot: string): Promise<Phases> {
	gc();
	await sleep(AFTER_FORCED_GC_MS);
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
	await sleep(AFTER_FORCED_GC_MS);
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
			delay: worstOf([startDelay.delay, holdDelay.delay, stopDelay.delay]),
			busy: worstOf([startDelay.busy, holdDelay.busy, stopDelay.busy]),
			wait: worstOf([startDelay.wait, holdDelay.wait, stopDelay.wait]),
			worstAtMs: Number.NaN,
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

function median(values: number[]): number {
	const sorted = [...values].sort((a, b) => a - b);
	const middle = Math.floor(sorted.length / 2);
	return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/**
 * One line: each side's median over the rounds, and the median of the rounds' own ratios (each
 * round's two sides ran minutes apart at most), with their range when there are several.
 */
function row(name: string, rounds: Array<{bare: Phases; supervised: Phases}>, pick: (phases: Phases) => number, unit: string, digits = 1): void {
	const bare = median(rounds.map(round => pick(round.bare)));
	const supervised = median(rounds.map(round => pick(round.supervised)));
	// A ratio to a figure that prints as zero (two stray descriptors over a fleet) means nothing.
	const ratios = rounds.filter(round => Math.abs(pick(round.bare)) >= 0.5 * 10 ** -digits).map(round => pick(round.supervised) / pick(round.bare));
	const range = ratios.length > 1 ? ` (${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)})` : '';
	const ratio = ratios.length === 0 ? '' : `ratio ${median(ratios).toFixed(2)}x${range}`;
	console.log(`${name.padEnd(26)} bare ${bare.toFixed(digits).padStart(9)} ${unit.padEnd(5)} supervised ${supervised.toFixed(digits).padStart(9)} ${unit.padEnd(5)} ${ratio}`);
}

/** Two lines of `row`: the p99 and the maximum of one spread, named `prefix` p99|max `suffix`. */
function spreadRows(prefix: string, suffix: string, rounds: Array<{bare: Phases; supervised: Phases}>, pick: (phases: Phases) => Spread): void {
	row(`${prefix}p99${suffix}`, rounds, phases => pick(phases).p99Ms, 'ms', 2);
	row(`${prefix}max${suffix}`, rounds, phases => pick(phases).maxMs, 'ms', 2);
}

async function main(): Promise<void> {
	const vmm = standInPath();
	const work = mkdtempSync(join(benchRoot(), 'vmwarden-bench-fleet-'));
	const kernel = join(work, 'kernel');
	writeFileSync(kernel, 'not booted by the stand-in\n');
	try {
		console.log(`fleet of ${COUNT} VMs on ${vmm}, files in ${benchRoot()}, held ${HOLD_MS} ms, ${ROUNDS} round(s); ${readFileSync('/proc/loadavg', 'utf8').trim()} (load before)\n`);
		const rounds: Array<{bare: Phases; supervised: Phases}> = [];
		for (let round = 0; round < ROUNDS; round++) {
			const bareDir = mkdtempSync(join(work, 'bare-'));
			const bare = await measure(() => bareFleet(vmm, kernel, bareDir), bareDir);
			const supervisedDir = mkdtempSync(join(work, 'supervised-'));
			const supervised = await measure(() => supervisedFleet(vmm, kernel, supervisedDir), supervisedDir);
			rounds.push({bare, supervised});
		}

		row('start all (to running)', rounds, phases => phases.startMs, 'ms');
		row('start throughput', rounds, phases => COUNT / phases.startMs * 1000, 'VM/s');
		row('stop all (to dead)', rounds, phases => phases.stopMs, 'ms');
		row('host RSS growth per VM', rounds, phases => phases.rssPerVmKib, 'KiB');
		row('host heap growth per VM', rounds, phases => phases.heapPerVmKib, 'KiB');
		row('host descriptors per VM', rounds, phases => phases.descriptorsPerVm, '', 2);
		row('event-loop delay mean*', rounds, phases => phases.loopDelay.meanMs, 'ms', 2);
		spreadRows('event-loop delay ', '*', rounds, phases => phases.loopDelay.delay);
		spreadRows('  of it on a CPU: ', '*', rounds, phases => phases.loopDelay.busy);
		spreadRows('  waiting for one: ', '*', rounds, phases => phases.loopDelay.wait);
		spreadRows('  while starting: ', '', rounds, phases => phases.startDelay.delay);
		spreadRows('  while holding: ', '', rounds, phases => phases.holdDelay.delay);
		spreadRows('  while stopping: ', '', rounds, phases => phases.stopDelay.delay);
		row('left behind', rounds, phases => phases.leftBehind, '', 0);
		const worst = Math.max(...rounds.map(round => round.supervised.loopDelay.delay.maxMs));
		console.log(`\nsupervised event-loop delay, worst of all rounds: ${worst.toFixed(2)} ms (${whereWorst(rounds.map(round => round.supervised))}); left behind in any round: bare ${Math.max(...rounds.map(round => round.bare.leftBehind))}, supervised ${Math.max(...rounds.map(round => round.supervised.leftBehind))}`);
		console.log(`\nbare: execa spawns of the stand-in with a control socket (running once spawned), then \`stop SOCKET\` for each. supervised: createVm for each (ten per turn), start() for all in one tick (running once spawned), then shutdown(), which stops each VM through its control socket and waits for its death and cleanup. Each figure is the median over the rounds; a ratio is the median of the rounds' ratios (their range in brackets). "of it on a CPU": the part of each delay the main thread was running (this process's code and the garbage collector's work on that thread); "waiting for one": the part it was ready to run but the scheduler ran other threads and processes. Memory and descriptors: growth of this process while holding the fleet (GC noise can make a small figure negative). *: the worst of the three phases.`);
	} finally {
		rmSync(work, {recursive: true, force: true});
	}
}

await main();
