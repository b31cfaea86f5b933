import os from 'node:os';
import {Subject, type Observable} from 'rxjs';
import {createActor, type ActorRefFrom, type InspectionEvent, type Observer as InspectionObserver, type SnapshotFrom} from 'xstate';
import type winston from 'winston';
import {InvalidConfigError, InvalidPayloadTransitionError, VmStateError, type VmwardenError} from './errors.js';
import {checkGuestCid} from './services/cids/range.js';
import {vmMachine, type VmMachineInput} from './machines/vm.machine.js';
import {defaultBootHangupTimeoutMs} from './services/config/boot-timeout.js';
import {createCrosvmDriver, crosvmDriver} from './services/crosvm/driver.js';
import type {CrosvmDialect} from './services/crosvm/command.js';
import type {DeathReason} from './services/death/reason.js';
import {getDefaultLogger} from './services/logging/logger.js';
import {isForwardMove, isPayloadState, type PayloadState} from './services/payload/state.js';
import type {FilePolicy} from './services/config/file-policy.js';
import type {VmConfig} from './services/config/vm-config.js';
import type {VmmDriver} from './services/vmm/driver.js';
import {logText} from './services/vmm/log-text.js';
import {checkTimeoutMs} from './services/config/timeouts.js';
import {IsolatedObservable} from './services/events/isolated-observable.js';
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
	/** Default: vmwarden's console logger. A child logger labelled with the CID is derived from it. */
	logger?: winston.Logger;
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

/** How `createVmHandle` attributes the calls made through the handle. */
export interface VmHandleOptions {
	/** Default `'caller'`; the supervisor uses `'supervisor'` for the handle it keeps. */
	initiator?: Initiator;
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
 * Wraps a `vmMachine` actor (created by `createVm`, or spawned by a parent such as the supervisor).
 * Wrap it before it can die: the death is taken from the `died` event, or from the snapshot when the
 * actor is already Dead.
 */
export function createVmHandle(actor: VmActor, options: VmHandleOptions = {}): Vm {
	const initiator = options.initiator ?? 'caller';
	const events = new Subject<VmEvent>();
	const logCallbackError = (what: string) => (error: unknown) => {
		actor.getSnapshot().context.env.logger.error(`${what} threw: ${logText(String(error))}`);
	};

	let resolveDied!: (death: VmDeath) => void;
	const died = new Promise<VmDeath>(resolve => {
		resolveDied = resolve;
	});
	let death: VmDeath | undefined;
	const deathCallbacks = new Set<(death: VmDeath) => void>();
	const callDeathCallback = (callback: (death: VmDeath) => void, record: VmDeath) => {
		try {
			callback(record);
		} catch (error) {
			logCallbackError('A death callback')(error);
		}
	};

	const reportDeath = (record: VmDeath) => {
		if (death !== undefined) {
			return;
		}

		death = record;
		resolveDied(record);
		for (const callback of [...deathCallbacks]) {
			deathCallbacks.delete(callback);
			callDeathCallback(callback, record);
		}
	};

	const initial = actor.getSnapshot();
	if (initial.context.death === undefined) {
		const subscription = actor.on('*', event => {
			events.next(event);
			if (event.type === 'died') {
				reportDeath(event.death);
			}

			if (event.type === 'died' || event.type === 'failed') {
				subscription.unsubscribe();
				events.complete();
			}
		});
	} else {
		reportDeath(initial.context.death);
		events.complete();
	}

	const snapshot = () => actor.getSnapshot();
	const snapshots$ = new IsolatedObservable<VmSnapshot>(logCallbackError('A snapshots$ subscriber'), subscriber => {
		subscriber.next(snapshot());
		const subscription = actor.subscribe({
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

	// Resolves with the first snapshot `accept` takes, or the last one if the actor stops first (a
	// parent may stop its child at any time).
	const whenSettled = async (accept: (current: VmSnapshot) => boolean): Promise<VmSnapshot> => new Promise(resolve => {
		const current = snapshot();
		if (accept(current) || actor.getSnapshot().status !== 'active') {
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
				resolve(snapshot());
			},
			complete() {
				resolve(snapshot());
			},
		});
	});

	return {
		get cid() {
			return snapshot().context.cid;
		},
		get state() {
			return stateOf(snapshot());
		},
		get payloadState() {
			return snapshot().context.payloadState;
		},
		get pid() {
			return snapshot().context.pid;
		},
		get tempDir() {
			return snapshot().context.tempDir;
		},
		died,
		onDied(callback) {
			if (death !== undefined) {
				callDeathCallback(callback, death);
				return () => undefined;
			}

			deathCallbacks.add(callback);
			return () => {
				deathCallbacks.delete(callback);
			};
		},
		snapshots$,
		events$: new IsolatedObservable<VmEvent>(logCallbackError('An events$ subscriber'), subscriber => events.subscribe(subscriber)),
		actor,
		async start() {
			if (!snapshot().matches({NotStarted: 'idle'}) || snapshot().status !== 'active') {
				throw new VmStateError('VM already started or failed');
			}

			actor.send({type: 'START', initiator});
			const settled = await whenSettled(current => !current.matches('NotStarted'));
			if (settled.matches('Failed')) {
				throw settled.context.startError as VmwardenError;
			}

			if (settled.matches('NotStarted')) {
				throw new VmStateError('VM actor was stopped before the VM started');
			}
		},
		async stop(stopOptions = {}) {
			const timeoutMs = stopOptions.timeoutMs === undefined ? undefined : checkTimeoutMs('timeoutMs', stopOptions.timeoutMs);
			const current = snapshot();
			if (current.matches('Dead')) {
				return current.context.death;
			}

			if (current.status !== 'active' || current.matches('Failed') || current.matches({NotStarted: 'idle'})) {
				return current.context.death;
			}

			actor.send({type: 'STOP', timeoutMs, initiator});
			const settled = await whenSettled(next => next.status !== 'active');
			return settled.context.death;
		},
		kill() {
			if (snapshot().status === 'active') {
				actor.send({type: 'KILL', initiator});
			}
		},
		updatePayloadState(state) {
			if (!isPayloadState(state)) {
				throw new InvalidConfigError('payloadState', `${String(state)} is not a payload state`);
			}

			const current = snapshot();
			if (!current.matches('Running')) {
				throw new VmStateError(`VM is ${stateOf(current)}: payload state changes need a running VM`);
			}

			if (!isForwardMove(current.context.payloadState, state)) {
				throw new InvalidPayloadTransitionError(current.context.payloadState, state);
			}

			actor.send({type: 'PAYLOAD.REPORT', state, initiator});
		},
	};
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
		logger: options.logger ?? getDefaultLogger(),
		bootHangupTimeoutMs: checkTimeoutMs('bootHangupTimeoutMs', options.bootHangupTimeoutMs ?? defaultBootHangupTimeoutMs()),
		stopTimeoutMs: checkTimeoutMs('stopTimeoutMs', options.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS),
		requester: options.requester ?? defaultRequester(),
		payloadChannel: options.payloadChannel ?? true,
		filePolicy: options.filePolicy ?? {},
	};
}

/**
 * Creates a standalone VM (not started). Throws `InvalidConfigError` for bad options; the config itself
 * is validated by `start()`, which then rejects and leaves the VM Failed.
 */
export function createVm(config: VmConfig, options: CreateVmOptions): Vm {
	const actor = createActor(vmMachine, {input: vmMachineInput(config, options), inspect: options.inspect});
	const vm = createVmHandle(actor);
	actor.start();
	return vm;
}
