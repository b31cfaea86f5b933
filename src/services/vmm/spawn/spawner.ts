import {spawn, type ChildProcess} from 'node:child_process';
import {Readable} from 'node:stream';
import type {AtExit, ChildEnvironment, DirectoryToMake, FromSpawner, OutputFile, ReadBack, StdioEntry, ToSpawner} from './protocol.js';
import {spawnTurn} from './pace.js';
import {SPAWNER_SOURCE} from './spawner-source.js';

/** The requests the spawner answers (each has an id its reply carries). */
type SpawnerRequest = Extract<ToSpawner, {op: 'spawn' | 'run' | 'mkdtemp' | 'rm'}>;

/**
 * How long the spawner process outlives its last child or command. Long enough that a fleet started
 * in waves reuses it, short enough that an idle host keeps no extra process for long.
 */
export const SPAWNER_IDLE_MS = 250;

/**
 * How long a new spawner process has to say it is ready. One that cannot (out of processes or
 * threads, no IPC channel) is killed, and every request it held fails with a typed error rather
 * than waiting for ever.
 */
export const SPAWNER_START_TIMEOUT_MS = 10_000;

/**
 * How many children one spawner process holds before the next spawn goes to another. libuv 1.46
 * (Node 20) calls `waitpid` on every child of a process whenever a SIGCHLD comes, so each exit costs
 * a process time in proportion to its children (1.1 ms with none, 6.5 ms with 9,000, measured): a
 * fleet's stop costs each spawner time in the square of its children. At 5,000 the first seconds of
 * a 10,000-VM stop had no deaths at all (the first spawner only walked its children, and its busy
 * CPU was the host's longest delays); at 2,500 deaths flow from the start. A fleet up to this size
 * has one spawner; a bigger one is spread over several, at most `SPAWNERS_SPAWNING` of them starting
 * children at a time (docs/performance.md).
 */
export const SPAWNER_CHILDREN = 2500;

/**
 * How many spawner processes start children at the same time. A fleet started in one tick fills
 * its spawners at once, and each spawning spawner is a session (a scheduler group) of its own that
 * wants a CPU: four at once (10,000 VMs at 2,500 a spawner) kept the host's main thread waiting for
 * one longer than two do (a start's longest delay 52-57 ms against 25-35 ms, measured). Spawns for
 * a further spawner wait in this process until one of them has started all it was given; the
 * throughput stays that of two.
 */
export const SPAWNERS_SPAWNING = 2;

/**
 * Short commands (a fleet's `crosvm stop`s) go to a spawner process of their own, with no VMM among
 * its children, when the least loaded spawner holds at least this many children and
 * `SPAWNER_COMMAND_BURST` commands already run: each command's exit costs its spawner a walk over
 * all its children (see SPAWNER_CHILDREN), and a fleet's stop runs one command per VM. At 10,000
 * VMs that took the stop's CPU on the whole machine from about 49 to 33-37 CPU-seconds
 * (docs/performance.md). A lone command, a few, or those of a smaller fleet still go to the least
 * loaded spawner: a walk over 1,000 children costs about 0.6 ms an exit, and starting a process
 * some 50 ms of CPU.
 */
export const SPAWNER_COMMAND_CHILDREN = 1000;

/** How many commands must already run before the next goes to a spawner of its own (see above). */
export const SPAWNER_COMMAND_BURST = 64;

/**
 * The autogroup nice value of a spawner process's session while it holds few children: under
 * contention for a CPU the host's session gets up to about three times a spawner's share (scheduler
 * weights 1024 and 335), so a fleet's forks and reaps keep the host's event loop waiting for a CPU
 * far less. Not 10 (weight 110) for a lone VM: measured with busy guests, the spawner's own work then
 * made a start 4x and a death report 10x slower. Its children are not affected: each VMM and each
 * short command has a session, and an autogroup at nice 0, of its own (docs/performance.md, "Who
 * gets the CPU").
 */
export const SPAWNER_AUTOGROUP_NICE = 5;

/**
 * The autogroup nice value of a spawner's session while it holds a fleet (`SPAWNER_FLEET_AT`
 * children, commands and spawns to do or more, until it holds fewer than half of that), and always
 * of the commands' spawner. A 10,000-VM fleet keeps five spawners busy through its stop (four of
 * VMMs and the commands'), and at nice 5 they together outweighed the host's session five to three:
 * with the host's main thread ready but waiting for a CPU, the spawners ran 54% of that time (`perf
 * sched`).
 * At nice 10 the longest event-loop delay of such a fleet was 26 and 29 ms in two runs, against 33,
 * 53 and 85 ms at 5 (docs/performance.md). A lone VM's start and death keep nice 5's latency.
 */
export const SPAWNER_FLEET_NICE = 10;

/**
 * How many children, commands and spawns to do make a spawner's load a fleet's (see
 * SPAWNER_FLEET_NICE): a fleet of more than one spawner's children fills the first at once, and a
 * 1,000-VM fleet never gets there (its start stays at the throughput of nice 5).
 */
export const SPAWNER_FLEET_AT = 2000;

/** How a spawner process's session weighs against the host's, by its load (see SPAWNER_FLEET_NICE). */
export interface SpawnerWeight {
	/** Its autogroup nice value while it holds fewer than `fleetAt` children, commands and spawns to do. */
	nice: number;
	/** From `fleetAt` of them on, until it holds fewer than half of that. */
	fleetNice: number;
	fleetAt: number;
}

/** A spawner of VMMs: nice 5, 10 while it holds a fleet. */
export const VMM_SPAWNER_WEIGHT: SpawnerWeight = {nice: SPAWNER_AUTOGROUP_NICE, fleetNice: SPAWNER_FLEET_NICE, fleetAt: SPAWNER_FLEET_AT};

/** The commands' spawner, which exists only for a fleet's burst of commands: 10 throughout. */
const COMMAND_SPAWNER_WEIGHT: SpawnerWeight = {nice: SPAWNER_FLEET_NICE, fleetNice: SPAWNER_FLEET_NICE, fleetAt: SPAWNER_FLEET_AT};

/** How a spawner process steps aside for a host that waits for a CPU (see `spawnerYield`). */
export interface SpawnerYield {
	/** The file the host main thread's scheduler statistics are read from (Linux's schedstat). */
	schedstat: string;
	/** When the host waited this long for a CPU since the spawner last looked, the next spawn waits. */
	waitMs: number;
	/** How long it then waits before it looks again. */
	pauseMs: number;
	/** The most it waits in a row, measured: then one goes, whatever the host's waiting (a machine loaded by others must not stop a fleet). */
	maxPauseMs: number;
	/** A look this long after the last one only takes its figure: what the host waited since is not recent. */
	recentMs: number;
}

/**
 * Each spawn of a spawner starts a process (a fork, two execs, the VMM's own start) that wants a CPU
 * at once: a fleet started in one tick keeps the machine's CPUs busy, and the host's main thread
 * then waits for one, most of all while its garbage collector works. Before each spawn, the spawner
 * looks at how long the host's main thread has waited for a CPU since it last looked, and steps
 * aside when it waited 10 ms or more: 5 ms at a time, for at most 50 ms in a row. A look 25 ms or
 * more after the last one only takes its figure, so a lone start after a quiet while goes at once.
 * The host's thread cannot wait longer than the time that passes: pauses follow each other only
 * while the host keeps waiting (its schedstat grows by the wait when it gets a CPU again). Short
 * commands never wait. Not 2 ms: a 1,000-VM start then ran at 0.86-0.88x the bare throughput, under
 * the 0.9x it must keep. Measured (docs/performance.md, "Who gets the CPU").
 */
export function spawnerYield(hostPid: number): SpawnerYield {
	return {schedstat: `/proc/${hostPid}/task/${hostPid}/schedstat`, waitMs: 10, pauseMs: 5, maxPauseMs: 50, recentMs: 25};
}

/** How a child ended. `lost` is set when the spawner process itself died and the exit is unknown. */
export interface ChildExit {
	code: number | null;
	signal: NodeJS.Signals | null;
	lost?: string;
}

/**
 * A spawn the operating system refused; `code` is the errno name (ENOENT, EMFILE, E2BIG, ...).
 * `inDir`: the spawn's directory could not be made, so nothing was tried after it. `lost`: the
 * spawner process was lost before it answered, so what it made is unknown.
 */
export class SpawnFailure extends Error {
	constructor(readonly code: string | undefined, message: string, readonly inDir = false, readonly lost = false) {
		super(message);
		this.name = 'SpawnFailure';
	}
}

/** What a short command left: its exit, the end of its stderr, and its stdout when asked for. */
export interface CommandResult extends ChildExit {
	stderr: string;
	/** Its whole stdout, when `maxStdoutBytes` was given and it printed no more. */
	stdout: string | undefined;
	/** It printed more than `maxStdoutBytes` on stdout, and was ended for it. */
	stdoutOverflow: boolean;
	timedOut: boolean;
	/** Why it could not be started (ENOENT, EMFILE, ...), when it was not. */
	failed: string | undefined;
}

/** How to run a short command (see `SpawnerPool.run`). */
export interface CommandRequest {
	/** Its whole environment. */
	env: ChildEnvironment;
	/** SIGTERM after this long, SIGKILL a second later; the result then has `timedOut`. */
	timeoutMs: number;
	/** How much of its stderr is kept. */
	maxOutputBytes: number;
	/** Keep its stdout, up to this many bytes: one more ends it (`stdoutOverflow`). Default: none kept. */
	maxStdoutBytes?: number;
	/** Ends the command early (SIGTERM, then SIGKILL) when it aborts. */
	signal?: AbortSignal;
}

/** What the spawner did once a child was gone (see `AtExit`). */
export interface ExitReadBack {
	failure: ReadBack | undefined;
	stderrTail: string;
	/** Why the directory to remove could not be removed, when it could not. */
	removeError: string | undefined;
}

/** What a spawn asks of the spawner besides the child. */
export interface SpawnExtras {
	/** Made before anything else; removed again when the spawn fails. */
	dir?: DirectoryToMake;
	/** Done once the child is gone; `SpawnedChild.readBack` carries the result. */
	atExit?: AtExit;
}

/** A child the spawner process started, as the host sees it. */
export interface SpawnedChild {
	readonly pid: number;
	/** Settles once the child exited (never rejects). */
	readonly exited: Promise<ChildExit>;
	/** The relayed pipes, by child fd. */
	readonly pipes: ReadonlyMap<number, Readable>;
	/**
	 * Settles once the spawner did the spawn's `atExit`, with what it read; `undefined` when no
	 * `atExit` was asked or the spawner was lost first (then nothing was read or removed).
	 */
	readonly readBack: Promise<ExitReadBack | undefined>;
	/** Has the spawner do the `atExit` now, for a child that exited with a relayed pipe still open. */
	settleNow(): void;
	/** Asks for a signal; false once the exit is known. */
	kill(signal: NodeJS.Signals): boolean;
}

interface LiveChild {
	resolveExit: (exit: ChildExit) => void;
	resolveReadBack: (readBack: ExitReadBack | undefined) => void;
	/** Whether the spawner's `settled` is still to come. */
	settling: boolean;
	pipes: Map<number, RelayedPipe>;
	/** The child fds of the relayed pipes the spawner has not closed yet. */
	open: Set<number>;
	exited: boolean;
	/** Known once the spawner answered. */
	pid?: number;
}

interface PendingRequest {
	resolve: (message: FromSpawner) => void;
	reject: (error: Error) => void;
}

/**
 * A pipe the spawner process reads: one chunk in flight, the next asked for once this side has taken
 * the last one, so the spawner never buffers more than a chunk for a reader that is slow or gone.
 */
class RelayedPipe extends Readable {
	#owed = false;
	#ended = false;

	constructor(private readonly ask: (op: 'more' | 'close') => void) {
		super();
	}

	deliver(chunk: Uint8Array): void {
		if (this.push(chunk)) {
			this.ask('more');
		} else {
			this.#owed = true;
		}
	}

	finish(): void {
		this.#ended = true;
		this.push(null);
	}

	override _read(): void {
		if (this.#owed) {
			this.#owed = false;
			this.ask('more');
		}
	}

	override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
		if (!this.#ended) {
			this.#ended = true;
			this.ask('close');
		}

		callback(error);
	}
}

/**
 * The host's side of the spawner process (./spawner-source.ts): starts it on the first request,
 * keeps the host alive (ref) while any child runs, and ends it once idle for `SPAWNER_IDLE_MS`
 * (never while a child runs: it is their parent, and takes them down if the host dies).
 */
class Spawner {
	#process: ChildProcess | undefined;
	#nextId = 1;
	#spawning = 0;
	readonly #requests = new Map<number, PendingRequest>();
	readonly #children = new Map<number, LiveChild>();
	#idleTimer: NodeJS.Timeout | undefined;
	/** The exit of the last process it let go (settled once that process is gone). */
	#exiting: Promise<void> | undefined;

	constructor(private readonly weight: SpawnerWeight) {}

	/** The children it holds (started, or being started). */
	get children(): number {
		return this.#children.size;
	}

	/** Its spawns not answered yet. */
	get spawning(): number {
		return this.#spawning;
	}

	/** Its children and the requests it has not answered yet. */
	get load(): number {
		return this.#children.size + this.#requests.size;
	}

	async spawn(file: string, args: string[], env: ChildEnvironment, stdio: StdioEntry[], relay: number[], outputs: OutputFile[] = [], {dir, atExit}: SpawnExtras = {}): Promise<SpawnedChild> {
		const id = this.#nextId++;
		const pipes = new Map<number, RelayedPipe>();
		let resolveExit!: (exit: ChildExit) => void;
		const exited = new Promise<ChildExit>(resolve => {
			resolveExit = resolve;
		});
		let resolveReadBack!: (readBack: ExitReadBack | undefined) => void;
		const readBack = new Promise<ExitReadBack | undefined>(resolve => {
			resolveReadBack = resolve;
		});
		const live: LiveChild = {resolveExit, resolveReadBack, settling: atExit !== undefined, pipes, open: new Set(relay), exited: false};
		if (atExit === undefined) {
			resolveReadBack(undefined);
		}

		for (const fd of relay) {
			pipes.set(fd, new RelayedPipe(op => {
				this.#post({op, id, fd});
			}));
		}

		// Registered before the request: the exit and the pipes' data may follow 'spawned' at once.
		this.#children.set(id, live);
		this.#spawning++;
		const reply = await this.#request({op: 'spawn', id, file, args, stdio, relay, outputs, env, dir, atExit}).catch((error: unknown) => {
			this.#children.delete(id);
			this.#settle();
			throw error;
		}).finally(() => {
			this.#spawning--;
		});
		if (reply.op !== 'spawned') {
			throw new Error(`spawner answered ${reply.op} to a spawn`);
		}

		live.pid = reply.pid;

		return {
			pid: reply.pid,
			exited,
			pipes,
			readBack,
			settleNow: () => {
				if (live.settling && this.#children.has(id)) {
					this.#post({op: 'settle', id});
				}
			},
			kill: signal => {
				if (live.exited || !this.#children.has(id)) {
					return false;
				}

				this.#post({op: 'kill', id, signal});
				return true;
			},
		};
	}

	async run(file: string, args: string[], {env, timeoutMs, maxOutputBytes, maxStdoutBytes, signal}: CommandRequest): Promise<CommandResult> {
		const id = this.#nextId++;
		const cancel = () => {
			this.#post({op: 'cancel', id});
		};
		const request = this.#request({op: 'run', id, file, args, timeoutMs, maxOutputBytes, maxStdoutBytes, env});
		if (signal?.aborted === true) {
			cancel();
		}

		signal?.addEventListener('abort', cancel, {once: true});
		const reply = await request.finally(() => {
			signal?.removeEventListener('abort', cancel);
		});
		if (reply.op !== 'ran') {
			throw new Error(`spawner answered ${reply.op} to a command`);
		}

		return {code: reply.code, signal: reply.signal, stderr: reply.stderr, stdout: reply.stdout, stdoutOverflow: reply.stdoutOverflow, timedOut: reply.timedOut, failed: reply.failed};
	}

	/** Makes `prefix` + six random characters, mode 0700, with a marker file in it; resolves with its path. */
	async makeTempDir(prefix: string, markerName: string, markerText: string): Promise<string> {
		const id = this.#nextId++;
		const reply = await this.#request({op: 'mkdtemp', id, prefix, markerName, markerText});
		if (reply.op !== 'made') {
			throw new Error(`spawner answered ${reply.op} to mkdtemp`);
		}

		return reply.path;
	}

	/** Removes a directory tree; rejects with why it could not. */
	async removeDir(path: string): Promise<void> {
		const id = this.#nextId++;
		const reply = await this.#request({op: 'rm', id, path});
		if (reply.op !== 'removed') {
			throw new Error(`spawner answered ${reply.op} to rm`);
		}

		if (reply.error !== undefined) {
			throw new Error(reply.error);
		}
	}

	async #request(message: SpawnerRequest): Promise<FromSpawner> {
		return new Promise((resolve, reject) => {
			this.#requests.set(message.id, {resolve, reject});
			this.#post(message);
		});
	}

	/**
	 * Ends the spawner now if it is idle, and resolves once it is gone, as is one it let go when idle
	 * a moment before (tests' leak baselines).
	 */
	async closeIdle(): Promise<void> {
		const child = this.#process;
		if (child !== undefined && this.#requests.size === 0 && this.#children.size === 0) {
			clearTimeout(this.#idleTimer);
			this.#idleTimer = undefined;
			this.#end(child);
		}

		await this.#exiting;
	}

	/** Lets an idle spawner go: it exits once its channel closes. */
	#end(child: ChildProcess): void {
		this.#process = undefined;
		if (child.exitCode === null && child.signalCode === null) {
			this.#exiting = new Promise<void>(resolve => {
				child.once('exit', () => {
					resolve();
				});
			});
		}

		child.disconnect();
	}

	#post(message: ToSpawner): void {
		this.#busy().send(message);
	}

	#busy(): ChildProcess {
		clearTimeout(this.#idleTimer);
		this.#idleTimer = undefined;
		if (this.#process === undefined) {
			// Its own session: a terminal's Ctrl-C reaches the host, which stops its VMs in order,
			// not every VMM at once. A clean environment: no NODE_OPTIONS of the host (a loader, a
			// debugger) in a process that only spawns.
			const child = spawn(process.execPath, ['-e', SPAWNER_SOURCE, String(process.pid), JSON.stringify(this.weight), JSON.stringify(spawnerYield(process.pid))], {
				stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
				serialization: 'advanced',
				detached: true,
				env: {},
			});
			const startTimer = setTimeout(() => {
				this.#lost(child, `the spawner process did not start within ${SPAWNER_START_TIMEOUT_MS} ms`);
				child.kill('SIGKILL');
			}, SPAWNER_START_TIMEOUT_MS);
			child.on('message', (message: FromSpawner) => {
				if (message.op === 'ready') {
					clearTimeout(startTimer);
				} else {
					this.#receive(message);
				}
			});
			child.on('error', error => {
				this.#lost(child, `the spawner process failed: ${error.message}`);
			});
			child.on('exit', (code, signal) => {
				clearTimeout(startTimer);
				this.#lost(child, `the spawner process exited with ${signal ?? code}`);
			});
			this.#process = child;
		}

		this.#process.ref();
		this.#process.channel?.ref();
		return this.#process;
	}

	#receive(message: FromSpawner): void {
		switch (message.op) {
			case 'spawned':
			case 'made':
			case 'removed':
			case 'ran': {
				this.#answer(message);
				break;
			}

			case 'failed': {
				const request = this.#requests.get(message.id);
				this.#requests.delete(message.id);
				this.#children.delete(message.id);
				request?.reject(new SpawnFailure(message.code, message.message, message.inDir === true));
				// Nothing else may be in flight: an idle spawner is let go as after any answer.
				this.#settle();
				break;
			}

			case 'data': {
				this.#children.get(message.id)?.pipes.get(message.fd)?.deliver(message.chunk);
				break;
			}

			case 'end': {
				const child = this.#children.get(message.id);
				child?.pipes.get(message.fd)?.finish();
				child?.open.delete(message.fd);

				this.#forget(message.id);
				break;
			}

			case 'exit': {
				const child = this.#children.get(message.id);
				if (child !== undefined) {
					child.exited = true;
					child.resolveExit({code: message.code, signal: message.signal});
					this.#forget(message.id);
				}

				break;
			}

			case 'settled': {
				const child = this.#children.get(message.id);
				if (child !== undefined) {
					child.settling = false;
					child.resolveReadBack({failure: message.failure, stderrTail: message.stderrTail, removeError: message.removeError});
					this.#forget(message.id);
				}

				break;
			}

			case 'error': {
				// A failed kill: the exit still comes and decides.
				break;
			}

			case 'ready': {
				// Handled where the process is made.
				break;
			}
		}
	}

	#answer(message: FromSpawner & {id: number}): void {
		const request = this.#requests.get(message.id);
		this.#requests.delete(message.id);
		request?.resolve(message);
		this.#settle();
	}

	#forget(id: number): void {
		const child = this.#children.get(id);
		if (child !== undefined && child.exited && child.open.size === 0 && !child.settling) {
			this.#children.delete(id);
			this.#settle();
		}
	}

	/** Once nothing is in flight: stop holding the host open, and end the spawner after a while. */
	#settle(): void {
		if (this.#requests.size > 0 || this.#children.size > 0 || this.#process === undefined || this.#idleTimer !== undefined) {
			return;
		}

		const child = this.#process;
		child.unref();
		child.channel?.unref();
		this.#idleTimer = setTimeout(() => {
			this.#idleTimer = undefined;
			if (this.#process === child) {
				this.#end(child);
			}
		}, SPAWNER_IDLE_MS);
		this.#idleTimer.unref();
	}

	/** The spawner died under its children: they are gone (parent-death signal) or unknowable now. */
	#lost(child: ChildProcess, reason: string): void {
		if (this.#process !== child) {
			return;
		}

		this.#process = undefined;
		clearTimeout(this.#idleTimer);
		this.#idleTimer = undefined;
		for (const [id, request] of this.#requests) {
			this.#children.delete(id);
			request.reject(new SpawnFailure(undefined, reason, false, true));
		}

		this.#requests.clear();
		for (const child of this.#children.values()) {
			// Its parent-death signal took it down with the spawner, unless its exec dropped the signal
			// (file capabilities): then this is its end. The pid was its a moment ago, when the spawner
			// went; the kernel hands out a freed pid again only after the whole range has cycled.
			if (child.pid !== undefined) {
				try {
					process.kill(child.pid, 'SIGKILL');
				} catch {
					// Gone already.
				}
			}

			child.exited = true;
			child.resolveExit({code: null, signal: null, lost: reason});
			for (const pipe of child.pipes.values()) {
				pipe.finish();
			}

			child.resolveReadBack(undefined);
		}

		this.#children.clear();
	}
}

/**
 * The spawner processes of this process: one, until a fleet holds more than `childrenPerSpawner`
 * children in each (see SPAWNER_CHILDREN), with at most `spawningAtOnce` of them starting children
 * at a time (see SPAWNERS_SPAWNING). A child stays with the spawner that started it.
 */
export class SpawnerPool {
	readonly #spawners: Spawner[];
	/** The spawner of commands apart from any VMM (see SPAWNER_COMMAND_CHILDREN), once needed. */
	#commands: Spawner | undefined;
	#commandsRunning = 0;
	/** Spawns waiting for a spawner that may start them, in the order they were asked for. */
	readonly #held: Array<(spawner: Spawner) => void> = [];
	/** A held spawn waits for its turn. */
	#releasing = false;

	constructor(
		private readonly childrenPerSpawner = SPAWNER_CHILDREN,
		private readonly commandsApart = {children: SPAWNER_COMMAND_CHILDREN, burst: SPAWNER_COMMAND_BURST},
		private readonly spawningAtOnce = SPAWNERS_SPAWNING,
		private readonly weight = VMM_SPAWNER_WEIGHT,
	) {
		this.#spawners = [new Spawner(weight)];
	}

	/** How many spawners of children it has made (each starts its process on demand and ends it when idle). */
	get size(): number {
		return this.#spawners.length;
	}

	async spawn(file: string, args: string[], env: ChildEnvironment, stdio: StdioEntry[], relay: number[], outputs: OutputFile[] = [], extras: SpawnExtras = {}): Promise<SpawnedChild> {
		return new Promise((resolve, reject) => {
			const start = (spawner: Spawner) => {
				spawner.spawn(file, args, env, stdio, relay, outputs, extras).then(resolve, reject).finally(() => {
					this.#release();
				});
			};

			if (this.#held.length === 0 && this.#mayStart()) {
				start(this.#forChild());
			} else {
				this.#held.push(start);
				this.#release();
			}
		});
	}

	async run(file: string, args: string[], request: CommandRequest): Promise<CommandResult> {
		const spawner = this.#forCommand();
		this.#commandsRunning++;
		try {
			return await spawner.run(file, args, request);
		} finally {
			this.#commandsRunning--;
		}
	}

	async makeTempDir(prefix: string, markerName: string, markerText: string): Promise<string> {
		return this.#leastLoaded().makeTempDir(prefix, markerName, markerText);
	}

	async removeDir(path: string): Promise<void> {
		await this.#leastLoaded().removeDir(path);
	}

	/** Ends every idle spawner process now, and resolves once they are gone (tests' leak baselines). */
	async closeIdle(): Promise<void> {
		await Promise.all([...this.#spawners, this.#commands].map(async spawner => spawner?.closeIdle()));
	}

	/**
	 * Hands the held spawns, in order, to spawners that may start them: one per spawn turn (see
	 * `spawnTurn`), as they were asked for, not thousands in one turn when a spawner is done.
	 */
	#release(): void {
		if (this.#releasing || this.#held.length === 0 || !this.#mayStart()) {
			return;
		}

		this.#releasing = true;
		void spawnTurn().then(() => {
			this.#releasing = false;
			if (this.#mayStart()) {
				this.#held.shift()?.(this.#forChild());
			}

			this.#release();
		});
	}

	/**
	 * Whether a spawn may start now: its spawner (the first with room) is spawning already, or fewer
	 * than `spawningAtOnce` are. Makes nothing: a spawner is made only for a spawn that starts.
	 */
	#mayStart(): boolean {
		const spawner = this.#withRoom();
		return (spawner !== undefined && spawner.spawning > 0) || this.#spawners.filter(candidate => candidate.spawning > 0).length < this.spawningAtOnce;
	}

	/** The first spawner with room for a child, if any. */
	#withRoom(): Spawner | undefined {
		return this.#spawners.find(candidate => candidate.children < this.childrenPerSpawner);
	}

	/** The first spawner with room for a child, else a new one. */
	#forChild(): Spawner {
		let spawner = this.#withRoom();
		if (spawner === undefined) {
			spawner = new Spawner(this.weight);
			this.#spawners.push(spawner);
		}

		return spawner;
	}

	/** The least loaded spawner; for a burst of commands next to a large fleet, the commands' own. */
	#forCommand(): Spawner {
		const least = this.#leastLoaded();
		if (this.#commandsRunning < this.commandsApart.burst || least.children < this.commandsApart.children) {
			return least;
		}

		this.#commands ??= new Spawner(COMMAND_SPAWNER_WEIGHT);
		return this.#commands;
	}

	/** For work that holds no child (a command, a directory): the spawner with the least to do. */
	#leastLoaded(): Spawner {
		return this.#spawners.reduce((least, candidate) => (candidate.load < least.load ? candidate : least));
	}
}

/** The spawners of this process. */
export const spawner = new SpawnerPool();

/** Ends this module's spawners if they are idle (a test file's last step: the next file's baselines). */
export async function closeIdleSpawner(): Promise<void> {
	await spawner.closeIdle();
}
