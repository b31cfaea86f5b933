import os from 'node:os';
import {EMPTY, Subject, type Observable} from 'rxjs';
import {createActor, type ActorRefFrom, type InspectionEvent, type Observer as InspectionObserver, type SnapshotFrom} from 'xstate';
import {InvalidConfigError, InvalidPayloadTransitionError, VmStateError, type VmwardenError} from './errors.js';
import {spawnTurn} from './services/vmm/spawn/pace.js';
import {checkVmmEnvironment, defaultVmmEnvironment} from './services/vmm/vmm-environment.js';
import type {BalloonStats} from './services/control/balloon.js';
import {readVmmBalloonStats, setVmmBalloon} from './services/control/operation.js';
import {checkBalloonBytes} from './services/control/balloon.js';
import type {ControlInput} from './services/control/operation.js';
import type {VmControlOperation} from './errors.js';
import {checkGuestCid} from './services/cids/range.js';
import {vmMachine, type VmMachineInput} from './machines/vm.machine.js';
import {defaultBootHangupTimeoutMs} from './services/config/boot-timeout.js';
import {createCrosvmDriver, crosvmDriver} from './services/crosvm/driver.js';
import type {CrosvmDialect} from './services/crosvm/command.js';
import {hostLogger} from './services/logging/host-logger.js';
import type {Logger, LogLevel} from './services/logging/logger.js';
import {isForwardMove, isPayloadState, type PayloadState} from './services/payload/state.js';
import type {FilePolicy} from './services/config/file-policy.js';
import type {VmConfig} from './services/config/vm-config.js';
import type {VmmDriver} from './services/vmm/driver.js';
import {checkTimeoutMs} from './services/config/timeouts.js';
import {isolatedObservable} from './services/events/isolated-observable.js';
import {Callbacks} from './services/events/callbacks.js';
import {OnDemandPromise} from './services/events/on-demand-promise.js';
import {defaultRequester, type Initiator, type Requester, type VmDeath, type VmEvent, type VmState} from './types.js';

/** The default time `stop()` waits for the VMM to exit before killing it (Android's, late 2025). */
export const DEFAULT_STOP_TIMEOUT_MS = 5000;

export type VmActor = ActorRefFrom<typeof vmMachine>;
export type VmSnapshot = SnapshotFrom<typeof vmMachine>;

export interface CreateVmOptions {
	/** The guest's vsock context ID (3 to 2^32 - 2); the supervisor allocates it. */
	cid: number;
	/** The VMM binary. Default: the driver's `defaultPath` (`crosvm`, looked up on PATH). */
	crosvmPath?: string;
	/** The crosvm command-line dialect, when `driver` is not given. Default `current`. */
	dialect?: CrosvmDialect;
	/** Default: the crosvm driver for `dialect`. */
	driver?: VmmDriver;
	/** Where the VM's temporary directory is created. Default `os.tmpdir()`. */
	tempRoot?: string;
	/**
	 * Where vmwarden logs: a winston logger (used as it is) or anything with `error`, `warn`, `info` and
	 * `debug` (`console`, pino). Default: warnings and errors to stderr, nothing to stdout.
	 */
	logger?: Logger;
	/** What vmwarden logs: `silent`, `error`, `warn`, `info` or `debug` (see docs/vm.md, "Logging"). */
	logLevel?: LogLevel;
	/** Default 10 s, 100 s under nested virtualization (see docs/vm.md). Whole milliseconds, 0 to 2^31 - 1. */
	bootHangupTimeoutMs?: number;
	/** Default 5 s. Whole milliseconds, 0 to 2^31 - 1. */
	stopTimeoutMs?: number;
	/** Give the guest the payload report channel. Default true. */
	payloadChannel?: boolean;
	/** What the config's files may be: see docs/security.md. Default `{}`, the strict policy. */
	filePolicy?: FilePolicy;
	/** An XState inspector (for example `@statelyai/inspect`). */
	inspect?: InspectionObserver<InspectionEvent> | ((event: InspectionEvent) => void);
	/** Default: this process (uid, `''`, pid). */
	requester?: Requester;
	/**
	 * The whole environment of the VMM and of its commands (`crosvm stop`, `suspend`, `balloon`):
	 * nothing else of this process's environment reaches them. Default `defaultVmmEnvironment()`: PATH,
	 * HOME, USER, LOGNAME, LANG, LC_ALL, TMPDIR, TZ, RUST_LOG, RUST_BACKTRACE and the CROSVM_* and QEMU_*
	 * variables as they are when the VM is created. See docs/security.md, "What a VMM inherits".
	 */
	vmmEnvironment?: Readonly<Record<string, string>>;
}

/** A running or finished VM, wrapping a `vmMachine` actor. */
export interface Vm {
	readonly cid: number;
	readonly state: VmState;
	readonly payloadState: PayloadState;
	/** The VMM's pid while it runs (and after, for the record). */
	readonly pid: number | undefined;
	readonly tempDir: string | undefined;
	/** Resolves with the death record once the VM is dead (never, when it failed to start). */
	readonly died: Promise<VmDeath>;
	/**
	 * Calls `callback` once with the death record (at once when already dead). Returns an unsubscribe.
	 * A callback that throws is logged; it never reaches the VM or the host.
	 */
	onDied(callback: (death: VmDeath) => void): () => void;
	/** Every snapshot, starting with the current one. */
	readonly snapshots$: Observable<VmSnapshot>;
	/**
	 * Lifecycle events from now on. Completes after `died` or `failed`. A subscriber that throws
	 * (also through `pipe`) is logged instead of crashing the host, as RxJS would.
	 */
	readonly events$: Observable<VmEvent>;
	readonly actor: VmActor;
	/** Resolves once the VMM runs; rejects with a typed error (the VM is then `Failed`). */
	start(): Promise<void>;
	/**
	 * Asks the VMM to stop, waits up to `timeoutMs` (default the VM's stop timeout), then kills it.
	 * Concurrent calls share one stop. Resolves with the death (SHUTDOWN or KILLED for a running VM),
	 * at once for a VM that is dead, or undefined for one that never ran. Rejects with
	 * `InvalidConfigError` for a `timeoutMs` that is not a whole number of milliseconds, 0 to 2^31 - 1.
	 */
	stop(options?: {timeoutMs?: number}): Promise<VmDeath | undefined>;
	/** SIGKILL while the VMM runs; otherwise nothing. Never throws. */
	kill(): void;
	/** Moves the payload forward; throws `InvalidPayloadTransitionError` for any other move. */
	updatePayloadState(state: PayloadState): void;
}

/** Whether the guest's vCPUs run, while the VM is Running. */
export type VmExecution = 'running' | 'suspending' | 'suspended' | 'resuming';

/**
 * What a running VM can be asked besides its lifecycle: suspend and resume, the balloon, its
 * captured console and log (docs/operations.md). `createVm` returns a handle with them; for a VM
 * from the supervisor, `vmOperations(vm)`.
 */
export interface VmOperations {
	/**
	 * Whether the guest's vCPUs run: `running`, `suspending`, `suspended` or `resuming` while the VM
	 * is Running; undefined otherwise.
	 */
	readonly execution: VmExecution | undefined;
	/**
	 * Pauses the guest's vCPUs (crosvm `suspend`, QMP `stop`); resolves once the VMM acknowledged.
	 * Resolves at once when suspended already, joins a suspend under way. Rejects with
	 * `VmStateError` unless the VMM runs (or while resuming), with `VmControlError` when the VMM
	 * refused or did not answer (the VM stays running), `VmControlUnsupportedError` for a driver
	 * without it.
	 */
	suspend(): Promise<void>;
	/** Lets a suspended guest run again (crosvm `resume`, QMP `cont`). Errors as `suspend()`. */
	resume(): Promise<void>;
	/**
	 * Sets the memory balloon's target to `bytes` (whole bytes, 0 to 2^53 - 1: `InvalidConfigError`
	 * otherwise). Needs a running VMM (`VmStateError`); rejects with `VmControlError` or
	 * `VmControlUnsupportedError`.
	 */
	setBalloon(bytes: number): Promise<void>;
	/** The balloon's size and the guest's memory statistics; refused (`VmStateError`) while suspended, as the guest cannot answer. */
	balloonStats(): Promise<BalloonStats>;
	/**
	 * The guest console's lines as they are written, from subscription on, when the config captures
	 * it (`capture: {console: true}`); completes when the VM's capture ends (at once without capture).
	 * Every line, however slow the subscriber: lines are pushed, never buffered for it.
	 */
	readonly console$: Observable<string>;
	/** The guest log's lines (`capture: {log: true}`), as `console$`. */
	readonly log$: Observable<string>;
}

/** A start() that waits for its event-loop turn. */
interface PendingStart {
	admitted: Promise<void>;
	/** kill() was called meanwhile: KILL follows START. */
	kill: boolean;
}

/** How `createVmHandle` attributes the calls made through the handle. */
export interface VmHandleOptions {
	/** Default `'caller'`; the supervisor uses `'supervisor'` for the handle it keeps. */
	initiator?: Initiator;
	/**
	 * Whether `start()` first waits for a spawn turn (default true). The supervisor admits its starts
	 * itself, before its own machine takes the request.
	 */
	pacedStart?: boolean;
}

function stateOf(snapshot: VmSnapshot): VmState {
	for (const state of ['NotStarted', 'Running', 'Dead', 'Failed'] as const) {
		if (snapshot.matches(state)) {
			return state;
		}
	}

	throw new Error(`unknown VM state ${JSON.stringify(snapshot.value)}`);
}

/**
 * Resolves with the first snapshot `accept` takes, or the last one if the actor stops first (a
 * parent may stop its child at any time).
 */
async function settledSnapshot(actor: VmActor, accept: (current: VmSnapshot) => boolean): Promise<VmSnapshot> {
	return new Promise(resolve => {
		const current = actor.getSnapshot();
		if (accept(current) || current.status !== 'active') {
			resolve(current);
			return;
		}

		const subscription = actor.subscribe({
			next(next) {
				if (accept(next)) {
					subscription.unsubscribe();
					resolve(next);
				}
			},
			error() {
				resolve(actor.getSnapshot());
			},
			complete() {
				resolve(actor.getSnapshot());
			},
		});
	});
}

/** The execution region's state, or undefined when the VM is not Running. */
function executionOf(snapshot: VmSnapshot): VmExecution | undefined {
	return EXECUTIONS.find(execution => snapshot.matches({Running: {execution}}));
}

const EXECUTIONS: readonly VmExecution[] = ['running', 'suspending', 'suspended', 'resuming'];

/**
 * What a balloon request goes to: the running VMM, refused with `VmStateError` when there is none
 * (and for statistics while suspended: the guest cannot answer, the request would only time out).
 */
function controlTarget(snapshot: VmSnapshot, operation: VmControlOperation): ControlInput {
	const {context} = snapshot;
	if (snapshot.status !== 'active' || !snapshot.matches({Running: {process: 'running'}}) || context.pid === undefined || context.tempDir === undefined || context.vmmFile === undefined) {
		throw new VmStateError(`VM is ${stateOf(snapshot)}: ${operation} needs a running VMM`);
	}

	if (operation === 'balloonStats' && executionOf(snapshot) !== 'running') {
		throw new VmStateError('balloonStats needs a running guest: the VM is suspended');
	}

	return {env: context.env, pid: context.pid, tempDir: context.tempDir, vmmFile: context.vmmFile};
}

/** What a callback or subscriber of a VM's handle throws: logged through the VM's logger. */
function logCallbackError(actor: VmActor, what: string): (error: unknown) => void {
	return (error: unknown) => {
		actor.getSnapshot().context.env.logger.error(`${what} threw: ${String(error)}`);
	};
}

/** Suspend or resume: joins a request under way, resolves at once when already there. */
async function changeExecution(actor: VmActor, type: 'SUSPEND' | 'RESUME', initiator: Initiator): Promise<void> {
	const verb = type === 'SUSPEND' ? 'suspend' : 'resume';
	const [goal, moving, opposite] = type === 'SUSPEND' ? (['suspended', 'suspending', 'resuming'] as const) : (['running', 'resuming', 'suspending'] as const);
	const current = actor.getSnapshot();
	const execution = executionOf(current);
	if (execution === undefined || current.status !== 'active' || !current.matches({Running: {process: 'running'}})) {
		throw new VmStateError(`VM is ${stateOf(current)}: ${verb} needs a running VMM`);
	}

	if (execution === goal) {
		return;
	}

	if (execution === opposite) {
		throw new VmStateError(`VM is ${opposite}: wait for it before asking to ${verb}`);
	}

	if (execution !== moving) {
		actor.send({type, initiator});
	}

	const request = actor.getSnapshot().context.controlRequests;
	const settled = await settledSnapshot(actor, next => executionOf(next) !== moving);
	if (executionOf(settled) === goal) {
		return;
	}

	const failure = settled.context.controlFailure;
	if (failure !== undefined && failure.request === request) {
		throw failure.error;
	}

	throw new VmStateError(`VM is ${stateOf(settled)}: it ended before the ${verb} was acknowledged`);
}

/** The life current at subscription: a life's lines, completed when its capture ends (at once without capture). */
function capturedLines(currentActor: () => VmActor, output: 'console' | 'log'): Observable<string> {
	return isolatedObservable<string>(error => {
		logCallbackError(currentActor(), `A ${output}$ subscriber`)(error);
	}, subscriber => {
		const {env} = currentActor().getSnapshot().context;
		return (env.config.capture?.[output] === true ? env.outputs.lines$(output) : EMPTY).subscribe(subscriber);
	});
}

/**
 * The operations of a VM, on its actor as it is at each call. A class, not an object literal of
 * closures: its methods are shared by every VM, and V8 keeps an object literal with getters as a
 * dictionary. The observables are made when first asked for.
 */
abstract class OperationsOnActor implements VmOperations {
	#console$: Observable<string> | undefined;
	#log$: Observable<string> | undefined;

	constructor(protected readonly initiator: Initiator) {}

	get execution(): VmExecution | undefined {
		return executionOf(this.currentActor().getSnapshot());
	}

	get console$(): Observable<string> {
		this.#console$ ??= capturedLines(() => this.currentActor(), 'console');
		return this.#console$;
	}

	get log$(): Observable<string> {
		this.#log$ ??= capturedLines(() => this.currentActor(), 'log');
		return this.#log$;
	}

	async suspend(): Promise<void> {
		await changeExecution(this.currentActor(), 'SUSPEND', this.initiator);
	}

	async resume(): Promise<void> {
		await changeExecution(this.currentActor(), 'RESUME', this.initiator);
	}

	async setBalloon(bytes: number): Promise<void> {
		const checked = checkBalloonBytes(bytes);
		await setVmmBalloon(controlTarget(this.currentActor().getSnapshot(), 'setBalloon'), checked);
	}

	async balloonStats(): Promise<BalloonStats> {
		return readVmmBalloonStats(controlTarget(this.currentActor().getSnapshot(), 'balloonStats'));
	}

	/** The actor the operations go to now. */
	protected abstract currentActor(): VmActor;
}

/** The operations of any VM, whose actor is read at each call. */
class LiveVmOperations extends OperationsOnActor {
	readonly #vm: Pick<Vm, 'actor'>;

	constructor(vm: Pick<Vm, 'actor'>, initiator: Initiator) {
		super(initiator);
		this.#vm = vm;
	}

	protected currentActor(): VmActor {
		return this.#vm.actor;
	}
}

/**
 * The operations of a VM (`createVm`'s handle has them; for a supervisor's VM call this with it):
 * requests are attributed to `options.initiator` (default `'caller'`). `vm.actor` is read at each
 * call, so a supervised VM's operations follow it into its next life after a restart.
 */
export function vmOperations(vm: Pick<Vm, 'actor'>, options: VmHandleOptions = {}): VmOperations {
	return new LiveVmOperations(vm, options.initiator ?? 'caller');
}

/**
 * A VM's handle over its actor. A class for the same reasons as `OperationsOnActor`; what only some
 * callers use (the `died` promise, death callbacks, the events' subject, the observables) is made
 * when first asked for: a fleet holds one handle per VM.
 */
class VmHandle extends OperationsOnActor implements Vm {
	readonly actor: VmActor;
	readonly #pacedStart: boolean;
	readonly #death = new OnDemandPromise<VmDeath>();
	readonly #deathCallbacks = new Callbacks<VmDeath>();
	/** Made for the first `events$` subscriber; undefined before, and once the events ended. */
	#events: Subject<VmEvent> | undefined;
	#eventsEnded = false;
	#events$: Observable<VmEvent> | undefined;
	#snapshots$: Observable<VmSnapshot> | undefined;
	/** A start() waiting for its turn: a stop() waits for it, a kill() follows it. */
	#pendingStart: PendingStart | undefined;

	constructor(actor: VmActor, options: VmHandleOptions) {
		super(options.initiator ?? 'caller');
		this.actor = actor;
		this.#pacedStart = options.pacedStart ?? true;
		const initial = actor.getSnapshot();
		if (initial.context.death === undefined) {
			const subscription = actor.on('*', event => {
				this.#events?.next(event);
				if (event.type === 'died') {
					this.#reportDeath(event.death);
				}

				if (event.type === 'died' || event.type === 'failed') {
					subscription.unsubscribe();
					this.#endEvents();
				}
			});
		} else {
			this.#reportDeath(initial.context.death);
			this.#endEvents();
		}
	}

	get cid(): number {
		return this.actor.getSnapshot().context.cid;
	}

	get state(): VmState {
		return stateOf(this.actor.getSnapshot());
	}

	get payloadState(): PayloadState {
		return this.actor.getSnapshot().context.payloadState;
	}

	get pid(): number | undefined {
		return this.actor.getSnapshot().context.pid;
	}

	get tempDir(): string | undefined {
		return this.actor.getSnapshot().context.tempDir;
	}

	get died(): Promise<VmDeath> {
		return this.#death.promise;
	}

	get snapshots$(): Observable<VmSnapshot> {
		this.#snapshots$ ??= isolatedObservable<VmSnapshot>(logCallbackError(this.actor, 'A snapshots$ subscriber'), subscriber => {
			subscriber.next(this.actor.getSnapshot());
			const subscription = this.actor.subscribe({
				next(next) {
					subscriber.next(next);
				},
				error(error) {
					subscriber.error(error);
				},
				complete() {
					subscriber.complete();
				},
			});
			return () => {
				subscription.unsubscribe();
			};
		});
		return this.#snapshots$;
	}

	get events$(): Observable<VmEvent> {
		this.#events$ ??= isolatedObservable<VmEvent>(logCallbackError(this.actor, 'An events$ subscriber'), subscriber => {
			if (this.#eventsEnded) {
				subscriber.complete();
				return undefined;
			}

			this.#events ??= new Subject<VmEvent>();
			return this.#events.subscribe(subscriber);
		});
		return this.#events$;
	}

	onDied(callback: (death: VmDeath) => void): () => void {
		const death = this.#death.value;
		if (death !== undefined) {
			try {
				callback(death);
			} catch (error) {
				logCallbackError(this.actor, 'A death callback')(error);
			}

			return () => undefined;
		}

		return this.#deathCallbacks.add(callback);
	}

	async start(): Promise<void> {
		this.#checkStartable();
		const {actor} = this;
		if (this.#pacedStart) {
			// A thousand start() calls in one tick cost the caller a promise each: each VM's first
			// transitions wait for their own event-loop turn (services/vmm/spawn/pace.ts). A stop()
			// or kill() meanwhile is carried out once the start was sent, as it would be while
			// launching.
			const pending: PendingStart = {admitted: spawnTurn(), kill: false};
			this.#pendingStart = pending;
			try {
				await pending.admitted;
			} finally {
				this.#pendingStart = undefined;
			}

			this.#checkStartable();
			actor.send({type: 'START', initiator: this.initiator, admitted: true});
			if (pending.kill) {
				actor.send({type: 'KILL', initiator: this.initiator});
			}
		} else {
			// The supervisor admitted this start: it took the turn before its own machine's step.
			actor.send({type: 'START', initiator: this.initiator, admitted: true});
		}

		const settled = await settledSnapshot(actor, current => !current.matches('NotStarted'));
		if (settled.matches('Failed')) {
			throw settled.context.startError as VmwardenError;
		}

		if (settled.matches('NotStarted')) {
			throw new VmStateError('VM actor was stopped before the VM started');
		}
	}

	async stop(stopOptions: {timeoutMs?: number} = {}): Promise<VmDeath | undefined> {
		const timeoutMs = stopOptions.timeoutMs === undefined ? undefined : checkTimeoutMs('timeoutMs', stopOptions.timeoutMs);
		if (this.#pendingStart !== undefined) {
			await this.#pendingStart.admitted;
		}

		const {actor} = this;
		const current = actor.getSnapshot();
		if (current.matches('Dead')) {
			return current.context.death;
		}

		if (current.status !== 'active' || current.matches('Failed') || current.matches({NotStarted: 'idle'})) {
			return current.context.death;
		}

		actor.send({type: 'STOP', timeoutMs, initiator: this.initiator});
		const settled = await settledSnapshot(actor, next => next.status !== 'active');
		return settled.context.death;
	}

	kill(): void {
		if (this.#pendingStart !== undefined) {
			this.#pendingStart.kill = true;
			return;
		}

		if (this.actor.getSnapshot().status === 'active') {
			this.actor.send({type: 'KILL', initiator: this.initiator});
		}
	}

	updatePayloadState(state: PayloadState): void {
		if (!isPayloadState(state)) {
			throw new InvalidConfigError('payloadState', `${String(state)} is not a payload state`);
		}

		const current = this.actor.getSnapshot();
		if (!current.matches('Running')) {
			throw new VmStateError(`VM is ${stateOf(current)}: payload state changes need a running VM`);
		}

		if (!isForwardMove(current.context.payloadState, state)) {
			throw new InvalidPayloadTransitionError(current.context.payloadState, state);
		}

		this.actor.send({type: 'PAYLOAD.REPORT', state, initiator: this.initiator});
	}

	protected currentActor(): VmActor {
		return this.actor;
	}

	#checkStartable(): void {
		const current = this.actor.getSnapshot();
		const starting = this.#pendingStart !== undefined;
		if (starting || !current.matches({NotStarted: 'idle'}) || current.status !== 'active') {
			throw new VmStateError(starting || (current.matches('NotStarted') && current.status === 'active')
				? 'VM is already starting: start() was called before'
				: `VM is ${stateOf(current)}: start() works once, on a VM not yet started`);
		}
	}

	#reportDeath(record: VmDeath): void {
		if (this.#death.settled) {
			return;
		}

		this.#death.resolve(record);
		this.#deathCallbacks.call(record, logCallbackError(this.actor, 'A death callback'), {once: true});
	}

	/** No event follows: subscribers are completed, later ones at once. */
	#endEvents(): void {
		this.#eventsEnded = true;
		this.#events?.complete();
		this.#events = undefined;
	}
}

/**
 * Wraps a `vmMachine` actor (created by `createVm`, or spawned by a parent such as the supervisor).
 * Wrap it before it can die: the death is taken from the `died` event, or from the snapshot when the
 * actor is already Dead.
 */
export function createVmHandle(actor: VmActor, options: VmHandleOptions = {}): Vm & VmOperations {
	return new VmHandle(actor, options);
}

/** The machine input `createVm` builds from its options (exported for parents that spawn VMs). */
export function vmMachineInput(config: VmConfig, options: CreateVmOptions): VmMachineInput {
	const driver = options.driver ?? (options.dialect === undefined ? crosvmDriver : createCrosvmDriver({dialect: options.dialect}));
	return {
		config,
		cid: checkGuestCid(options.cid),
		driver,
		vmmPath: options.crosvmPath ?? driver.defaultPath,
		tempRoot: options.tempRoot ?? os.tmpdir(),
		logger: hostLogger(options.logger, options.logLevel),
		bootHangupTimeoutMs: checkTimeoutMs('bootHangupTimeoutMs', options.bootHangupTimeoutMs ?? defaultBootHangupTimeoutMs()),
		stopTimeoutMs: checkTimeoutMs('stopTimeoutMs', options.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS),
		requester: options.requester ?? defaultRequester(),
		payloadChannel: options.payloadChannel ?? true,
		filePolicy: options.filePolicy ?? {},
		vmmEnvironment: options.vmmEnvironment === undefined ? defaultVmmEnvironment() : checkVmmEnvironment('vmmEnvironment', options.vmmEnvironment),
	};
}

/**
 * Creates a standalone VM (not started). Throws `InvalidConfigError` for bad options; the config itself
 * is validated by `start()`, which then rejects and leaves the VM Failed.
 */
export function createVm(config: VmConfig, options: CreateVmOptions): Vm & VmOperations {
	const actor = createActor(vmMachine, {input: vmMachineInput(config, options), inspect: options.inspect});
	const vm = createVmHandle(actor);
	actor.start();
	return vm;
}
