import {Observable, Subject} from 'rxjs';
import {createActor, type Actor, type InspectionEvent, type Observer} from 'xstate';
import type winston from 'winston';
import {InvalidConfigError, SupervisorFailedError, SupervisorShutDownError} from './errors.js';
import {spawnTurn} from './services/vmm/spawn/pace.js';
import {supervisorMachine, type SupervisorMachineEmitted, type SupervisorMachineEvent, type SupervisorReply, type VmActorRef, type VmDefaults} from './machines/supervisor.machine.js';
import type {RestartActorRef, RestartEmitted, RestartOutcome} from './machines/restart.machine.js';
import type {GroupActorRef, GroupEmitted} from './machines/group.machine.js';
import {RestartEnvironment} from './services/restart/environment.js';
import {resolveGroupPolicy, resolveRestartPolicy, type GroupPolicy, type GroupPolicyOptions, type RestartPolicy, type RestartPolicyOptions} from './services/restart/policy.js';
import {validateCidRange} from './services/cids/allocator.js';
import type {CrosvmDialect} from './services/crosvm/command.js';
import {checkTimeoutMs} from './services/config/timeouts.js';
import {describeDefaultBootHangupTimeout} from './services/config/boot-timeout.js';
import {openStateDir, type OpenedStateDir} from './services/state-dir/open.js';
import type {FilePolicy} from './services/config/file-policy.js';
import {validateConfig} from './services/config/validate.js';
import type {VmConfig} from './services/config/vm-config.js';
import {createEventChannel} from './services/events/event-channel.js';
import {Callbacks} from './services/events/callbacks.js';
import {OnDemandPromise} from './services/events/on-demand-promise.js';
import {endFleet} from './services/fleet/fleet-guard.js';
import type {VmmDriver} from './services/vmm/driver.js';
import {hostLogger} from './services/logging/host-logger.js';
import type {Logger, LogLevel} from './services/logging/logger.js';
import {createVmHandle, vmMachineInput, vmOperations, type Vm, type VmActor, type VmExecution, type VmOperations, type VmSnapshot} from './vm.js';
import {DEFAULT_CID_RANGE, type CidRange} from './services/cids/range.js';
import {defaultRequester, type Requester, type VmDeath, type VmEvent, type VmState} from './types.js';
import type {PayloadState} from './services/payload/state.js';
import type {BalloonStats} from './services/control/balloon.js';
export {NoAvailableCidError, SupervisorShutDownError} from './errors.js';
export {DEFAULT_CID_RANGE, type CidRange} from './services/cids/range.js';

export type {ReapedVm, StaleVmOutcome} from './services/state-dir/reap.js';

export interface SupervisorOptions {
	/** The VMM binary. Default: the driver's `defaultPath` (`crosvm` on PATH). */
	crosvmPath?: string;
	/** The crosvm command-line dialect, when `driver` is not given. Default `current`. */
	dialect?: CrosvmDialect;
	/** The VMM driver. Default: the crosvm driver for `dialect`. */
	driver?: VmmDriver;
	/** The CIDs to hand out. Default 2048..65535. */
	cidRange?: CidRange;
	/**
	 * Where the supervisor keeps what must survive it: the last allocated CID and a record of each
	 * running VM (for the next instance to reap). Created 0700 when missing. Default: nothing is kept.
	 */
	stateDir?: string;
	/** Where each VM's temporary directory is created. Default `os.tmpdir()`. */
	tempRoot?: string;
	/**
	 * Where vmwarden logs: a winston logger (used as it is), or anything with `error`, `warn`, `info` and
	 * `debug` (`console`, pino). Default: warnings and errors to stderr, nothing to stdout.
	 */
	logger?: Logger;
	/**
	 * What vmwarden logs: `silent`, `error`, `warn`, `info` or `debug`. Default `warn` without a logger,
	 * `info` with a minimal one; a winston logger keeps its own level.
	 */
	logLevel?: LogLevel;
	/** An XState inspector: it sees the supervisor and every VM actor (one actor system). */
	inspect?: Observer<InspectionEvent> | ((event: InspectionEvent) => void);
	/** Default 10 s, 100 s under nested virtualization. */
	bootHangupTimeoutMs?: number;
	/** How long a stop waits before killing. Default 5 s. */
	stopTimeoutMs?: number;
	/**
	 * The restart policy of every VM that `createVm` does not give its own (fields it leaves out come
	 * from here). Default: never restart (see docs/supervision.md).
	 */
	restartPolicy?: RestartPolicyOptions;
	/** The clock and randomness of restarts: for tests that simulate time or fix the jitter. */
	restartEnvironment?: RestartEnvironment;
	/** What every VM config's files may be: see docs/security.md. Default `{}`, the strict policy. */
	filePolicy?: FilePolicy;
	/**
	 * The whole environment of every VMM and of its commands (`crosvm stop`, `suspend`, `balloon`):
	 * nothing else of this process's environment reaches them. Default `defaultVmmEnvironment()`: PATH,
	 * HOME, USER, LOGNAME, LANG, LC_ALL, TMPDIR, TZ, RUST_LOG, RUST_BACKTRACE and the CROSVM_* and QEMU_*
	 * variables as they are when the supervisor is created. See docs/security.md, "What a VMM inherits".
	 */
	vmmEnvironment?: Readonly<Record<string, string>>;
}

export interface CreateSupervisedVmOptions {
	/** Default: this process (uid, `''`, pid). */
	requester?: Requester;
	/** Give the guest the payload report channel. Default true. */
	payloadChannel?: boolean;
	/** This VM's restart policy, over the supervisor's `restartPolicy`. */
	restartPolicy?: RestartPolicyOptions;
}

/** A supervisor event: a VM's lifecycle event (with its CID and initiator), the supervisor's own, or a restart step. */
export type SupervisorEvent = VmEvent | SupervisorMachineEmitted | RestartEmitted | GroupEmitted;

/**
 * Where a supervised VM's restart policy stands: `unsupervised` when its policy never restarts it
 * and it is in no group; otherwise `idle` before the first start, `alive` while a life runs,
 * `ending` once a stop was asked, `backoff` (or, alone, `restarting`) between lives, and how it
 * ended: `ended`, `gave-up` or `cancelled`.
 */
export type SupervisionState = 'unsupervised' | 'idle' | 'alive' | 'ending' | 'backoff' | 'restarting' | 'ended' | 'gave-up' | 'cancelled';

/**
 * The supervisor's handle on a VM: the same VM across its restarts. It keeps the CID (held during a
 * backoff too); `state`, `pid`, `tempDir`, `payloadState`, `snapshots$` and `actor` follow the
 * current life; `events$` spans every life and the restart steps, and completes once no restart
 * follows (the restart steps are in `supervision$`). `died` and `onDied` give the final death (the one no restart follows); `onDeath` is called
 * for each life's death. `stop()` and `kill()` end the VM for good: no restart follows them, and
 * during a backoff they cancel the restart at once.
 */
export interface SupervisedVm extends Vm, VmOperations {
	/** Calls `callback` with each life's death, from now on. Returns an unsubscribe. */
	onDeath(callback: (death: VmDeath) => void): () => void;
	/** How many times the supervisor restarted the VM. */
	readonly restarts: number;
	/** The newest deaths, oldest first, at most the policy's `historySize`. */
	readonly deaths: readonly VmDeath[];
	readonly supervision: SupervisionState;
	/** This VM's restart steps (scheduled, restarted, reset, gave up, cancelled); completes with `events$`. A group's steps are in the supervisor's `events$`. */
	readonly supervision$: Observable<RestartEmitted>;
	readonly restartPolicy: RestartPolicy;
	/** The id of its supervision group, if it is in one. */
	readonly group: string | undefined;
}

/**
 * VMs that depend on each other, supervised together (OTP's supervisor with its children): when a
 * member fails (as its own restart policy judges its death), the group's strategy says which
 * members restart, after the group's backoff; past the group's intensity it stops every member and
 * the supervisor reports `supervisor.group.gaveUp`. Members are ordered by creation: start them in
 * that order; a group restart starts them in it.
 */
export interface SupervisionGroup {
	readonly id: string;
	readonly policy: GroupPolicy;
	/** `createVm` into this group. Rejects with `SupervisionGroupClosedError` once it gave up or is ending. */
	createVm(config: VmConfig, options?: CreateSupervisedVmOptions): Promise<SupervisedVm>;
	/** Its members holding a CID, in the group's order. */
	vms(): SupervisedVm[];
	/** How many group restarts it made. */
	readonly restarts: number;
	/** `active`; `ending` (shutdown) or `gave-up` while members are still stopping; `done` once none is left. */
	readonly state: 'active' | 'ending' | 'gave-up' | 'done';
}

export interface Supervisor {
	/**
	 * Allocates a CID and creates a VM (not started: call `start()`). Works from anywhere, including
	 * an `events$` subscriber or an `onDied` callback. Rejects with `InvalidConfigError` (nothing
	 * held), `NoAvailableCidError` or `SupervisorShutDownError`.
	 */
	createVm(config: VmConfig, options?: CreateSupervisedVmOptions): Promise<SupervisedVm>;
	/**
	 * Creates a supervision group (see docs/supervision.md). Rejects with `InvalidConfigError` for a
	 * bad policy, or `SupervisorShutDownError`.
	 */
	createGroup(policy?: GroupPolicyOptions): Promise<SupervisionGroup>;
	/** The VM holding `cid`, until its CID is released (dead for good and cleaned up). */
	get(cid: number): SupervisedVm | undefined;
	/** Every VM holding a CID, in CID order. */
	vms(): SupervisedVm[];
	/**
	 * Every lifecycle event of every VM, and the supervisor's own events, in order. A subscriber that
	 * throws is logged and skipped; it never reaches the host.
	 */
	readonly events$: Observable<SupervisorEvent>;
	/** Resolves once the VMs a previous instance left in `stateDir` are reaped (at once without one). */
	readonly reaped: Promise<void>;
	/**
	 * Stops every VM in parallel (graceful, then SIGKILL after `stopTimeoutMs`) and resolves when all
	 * are dead, reported and cleaned up. Later `createVm` calls, and `start()` of a VM that never
	 * started, are refused with `SupervisorShutDownError`. Idempotent: a second call returns the same
	 * wait (its `stopTimeoutMs` is not used). Rejects with `InvalidConfigError` for a `stopTimeoutMs`
	 * that is not an integer from 0 to 2^31 - 1.
	 */
	shutdown(options?: {stopTimeoutMs?: number}): Promise<void>;
	readonly actor: Actor<typeof supervisorMachine>;
}

type AcceptedReply = Exclude<SupervisorReply, {type: 'supervisor.vm.refused'}>;

interface PendingRequest {
	answer(reply: SupervisorReply): void;
	fail(error: Error): void;
}

/**
 * Creates a supervisor. With `stateDir`, it takes the directory over (refusing one a live supervisor
 * owns), reads the last allocated CID, and reaps the VMs a previous instance left running.
 */
export function createSupervisor(options: SupervisorOptions = {}): Supervisor {
	const cidRange = validateCidRange(options.cidRange ?? DEFAULT_CID_RANGE);
	for (const field of ['stopTimeoutMs', 'bootHangupTimeoutMs'] as const) {
		if (options[field] !== undefined) {
			checkTimeoutMs(field, options[field]);
		}
	}

	const {config: _config, cid: _cid, requester: _requester, payloadChannel: _payloadChannel, ...vmDefaults} = vmMachineInput({}, {
		cid: cidRange.first,
		crosvmPath: options.crosvmPath,
		dialect: options.dialect,
		driver: options.driver,
		tempRoot: options.tempRoot,
		logger: hostLogger(options.logger, options.logLevel),
		bootHangupTimeoutMs: options.bootHangupTimeoutMs,
		stopTimeoutMs: options.stopTimeoutMs,
		filePolicy: options.filePolicy,
		vmmEnvironment: options.vmmEnvironment,
	});
	const restartPolicy = resolveRestartPolicy(options.restartPolicy);
	if (options.restartEnvironment !== undefined && !(options.restartEnvironment instanceof RestartEnvironment)) {
		throw new InvalidConfigError('restartEnvironment', 'must be a RestartEnvironment');
	}

	// Throws InvalidConfigError naming stateDir, holding nothing; once it returns, the lock is ours.
	const stateDir = options.stateDir === undefined ? undefined : openStateDir(options.stateDir);
	try {
		if (options.bootHangupTimeoutMs === undefined) {
			// Ten times longer under nested virtualization, which is easy to be on without knowing.
			vmDefaults.logger.debug(describeDefaultBootHangupTimeout());
		}

		if (stateDir?.lastCidProblem !== undefined) {
			vmDefaults.logger.warn(`State directory: ${stateDir.lastCidProblem}; allocating from the bottom of the CID range`);
		}

		for (const name of stateDir?.strays ?? []) {
			vmDefaults.logger.warn(`State directory: ${options.stateDir}/vms/${name} is no record of ours: left alone`);
		}

		return supervise({cidRange, vmDefaults, stateDir: options.stateDir, opened: stateDir, inspect: options.inspect, restartPolicy, restartEnvironment: options.restartEnvironment});
	} catch (error) {
		stateDir?.release();
		throw error;
	}
}

function supervise({cidRange, vmDefaults, stateDir, opened, inspect, restartPolicy, restartEnvironment}: {
	cidRange: CidRange;
	vmDefaults: VmDefaults;
	stateDir: string | undefined;
	opened: OpenedStateDir | undefined;
	inspect: SupervisorOptions['inspect'];
	restartPolicy: RestartPolicy;
	restartEnvironment: RestartEnvironment | undefined;
}): Supervisor {
	const {logger} = vmDefaults;
	const actor = createActor(supervisorMachine, {
		input: {cidRange, lastAllocatedCid: opened?.lastAllocatedCid, staleVms: opened?.staleVms ?? [], stateDir, vmDefaults, restartEnvironment},
		inspect,
	});
	const channel = createEventChannel<SupervisorEvent>(error => {
		logger.error(`An events$ subscriber threw: ${String(error)}`);
	});
	const handles = new Map<number, SupervisedVm>();
	const lives = new Map<number, (ref: VmActorRef) => void>();
	const groupMembers = new Map<number, (outcome: RestartOutcome, death: VmDeath | undefined) => void>();
	/** How to end each supervised VM's supervision should the supervisor actor go: see `abandon`. */
	const abandons = new Map<number, () => void>();
	const pending = new Map<number, PendingRequest>();
	let lastRequestId = 0;

	actor.on('*', event => {
		if ('requestId' in event) {
			const request = pending.get(event.requestId);
			pending.delete(event.requestId);
			request?.answer(event);
			return;
		}

		if (event.type === 'supervisor.vm.respawned') {
			lives.get(event.cid)?.(event.vm);
			return;
		}

		if (event.type === 'supervisor.cid.released') {
			handles.delete(event.cid);
			lives.delete(event.cid);
			groupMembers.delete(event.cid);
			abandons.delete(event.cid);
		}

		channel.publish(event);
	});

	let resolveReaped!: () => void;
	const reaped = new Promise<void>(resolve => {
		resolveReaped = resolve;
	});
	let resolveDone!: () => void;
	const done = new Promise<void>(resolve => {
		resolveDone = resolve;
	});
	let finished = false;
	const finish = () => {
		finished = true;
		opened?.release();
		resolveReaped();
		// After the last event is out.
		queueMicrotask(() => {
			channel.close();
			resolveDone();
		});
	};

	/**
	 * The actor is gone: nobody is left to answer, so every pending request is refused, and no restart
	 * follows any VM: each supervised VM is over once its current life is.
	 */
	const abandon = (error: Error) => {
		for (const request of pending.values()) {
			request.fail(error);
		}

		pending.clear();
		for (const end of [...abandons.values()]) {
			end();
		}

		abandons.clear();
		if (!finished) {
			finish();
		}
	};

	actor.subscribe({
		next(snapshot) {
			if (snapshot.matches({Serving: {reaper: 'Reaped'}})) {
				resolveReaped();
			}

			if (snapshot.matches('ShutDown') && !finished) {
				finish();
			}
		},
		error(error) {
			// Never expected (a failed state write is reported, not thrown). XState stops nothing of a
			// failed actor: its VMs are killed here, from the map its context still holds.
			logger.error(`The supervisor actor failed: ${String(error)}`);
			endFleet(actor.getSnapshot().context.vms);
			abandon(new SupervisorFailedError(error));
		},
		complete() {
			// Only when someone stops `actor` by hand (ShutDown is not final): its fleet guard killed its VMs.
			abandon(new SupervisorShutDownError());
		},
	});
	actor.start();

	/**
	 * Sends the request `build` makes and settles with the machine's answer: `accept` runs inside the
	 * machine's reply, before any later event is processed; a refusal rejects with its typed error.
	 */
	const ask = async <TType extends AcceptedReply['type'], TResult>(
		expected: TType,
		build: (requestId: number) => SupervisorMachineEvent,
		accept: (reply: Extract<AcceptedReply, {type: TType}>) => TResult | Promise<TResult>,
	): Promise<TResult> => new Promise<TResult>((resolve, reject) => {
		const {status} = actor.getSnapshot();
		if (status !== 'active') {
			// Only if someone stopped `actor` by hand, or it failed: nobody is left to answer.
			reject(status === 'error' ? new SupervisorFailedError(actor.getSnapshot().error) : new SupervisorShutDownError());
			return;
		}

		const requestId = ++lastRequestId;
		const isExpected = (reply: SupervisorReply): reply is Extract<AcceptedReply, {type: TType}> => reply.type === expected;
		pending.set(requestId, {
			answer(reply) {
				if (reply.type === 'supervisor.vm.refused') {
					reject(reply.error);
				} else if (isExpected(reply)) {
					try {
						resolve(accept(reply));
					} catch (error) {
						reject(error instanceof Error ? error : new Error(String(error)));
					}
				}
			},
			fail: reject,
		});
		actor.send(build(requestId));
	});

	const adopt = (ref: VmActorRef, restart: RestartActorRef | undefined, policy: RestartPolicy, group: string | undefined): SupervisedVm => {
		const handle = createVmHandle(ref, {pacedStart: false});
		const {vm, adoptLife, finish, abandon: abandonVm} = supervisedVm({
			first: handle,
			restart,
			group,
			policy,
			// Starting goes through the supervisor: its machine refuses once it is shutting down, and
			// otherwise lets the handle start the VM within the same step, before a shutdown can interleave.
			// A thousand start() calls in one tick cost the caller a promise each: each request waits for
			// its own event-loop turn (services/vmm/spawn/pace.ts), holding one promise chain meanwhile.
			start: () => spawnTurn().then(async () => ask('supervisor.vm.startAccepted', requestId => ({type: 'VM.START', requestId, cid: handle.cid}), async () => handle.start())),
			end() {
				if (actor.getSnapshot().status === 'active') {
					actor.send({type: 'VM.END', cid: handle.cid});
				}
			},
			publish(event) {
				channel.publish(event);
			},
			logger,
		});
		handles.set(vm.cid, vm);
		lives.set(vm.cid, life => {
			adoptLife(createVmHandle(life, {pacedStart: false}));
		});
		if (group !== undefined) {
			groupMembers.set(vm.cid, finish);
		}

		abandons.set(vm.cid, abandonVm);
		return vm;
	};

	const createSupervisedVm = async (config: VmConfig, vmOptions: CreateSupervisedVmOptions, group: string | undefined): Promise<SupervisedVm> => {
		const {requester, payloadChannel, restartPolicy: policyOptions} = checkCreateOptions(vmOptions);
		validateConfig(config, vmDefaults.filePolicy, requester);
		const policy = resolveRestartPolicy(policyOptions, restartPolicy);
		return ask('supervisor.vm.created', requestId => ({type: 'VM.CREATE', requestId, config, requester, payloadChannel, restartPolicy: policy, group}), reply => adopt(reply.vm, reply.restart, policy, group));
	};

	const adoptGroup = (id: string, ref: GroupActorRef, policy: GroupPolicy): SupervisionGroup => {
		ref.on('*', event => {
			channel.publish(event);
			if (event.type === 'supervisor.group.memberLeft') {
				groupMembers.get(event.cid)?.(event.outcome, event.death);
			}
		});
		return {
			id,
			policy,
			async createVm(config, vmOptions = {}) {
				return createSupervisedVm(config, vmOptions, id);
			},
			vms() {
				return [...handles.values()].filter(vm => vm.group === id).sort((a, b) => a.cid - b.cid);
			},
			get restarts() {
				return ref.getSnapshot().context.restarts;
			},
			get state() {
				const snapshot = ref.getSnapshot();
				if (snapshot.status !== 'active') {
					return 'done';
				}

				return snapshot.matches('Active') ? 'active' : snapshot.matches('GivingUp') ? 'gave-up' : 'ending';
			},
		};
	};

	return {
		async createVm(config, vmOptions = {}) {
			return createSupervisedVm(config, vmOptions, undefined);
		},
		async createGroup(groupOptions) {
			const policy = resolveGroupPolicy(groupOptions);
			return ask('supervisor.group.created', requestId => ({type: 'GROUP.CREATE', requestId, policy}), reply => adoptGroup(reply.id, reply.group, policy));
		},
		get(cid) {
			return handles.get(cid);
		},
		vms() {
			return [...handles.values()].sort((a, b) => a.cid - b.cid);
		},
		events$: channel.events$,
		reaped,
		async shutdown(shutdownOptions = {}) {
			if (typeof shutdownOptions !== 'object' || shutdownOptions === null) {
				throw new InvalidConfigError('shutdown options', 'must be an object');
			}

			const stopTimeoutMs = shutdownOptions.stopTimeoutMs === undefined ? undefined : checkTimeoutMs('stopTimeoutMs', shutdownOptions.stopTimeoutMs);
			if (actor.getSnapshot().status === 'active') {
				// Accepting takes it; Draining and ShutDown ignore it (the first call's wait is shared).
				actor.send({type: 'SHUTDOWN', stopTimeoutMs});
			}

			await done;
		},
		actor,
	};
}

/** Checks what `createVm` was given besides the config, and fills in the defaults. */
function checkCreateOptions(options: CreateSupervisedVmOptions): Required<Omit<CreateSupervisedVmOptions, 'restartPolicy'>> & Pick<CreateSupervisedVmOptions, 'restartPolicy'> {
	if (typeof options !== 'object' || options === null) {
		throw new InvalidConfigError('createVm options', 'must be an object');
	}

	const {requester = defaultRequester(), payloadChannel = true} = options;
	if (typeof payloadChannel !== 'boolean') {
		throw new InvalidConfigError('payloadChannel', `must be a boolean, not ${typeof payloadChannel}`);
	}

	if (typeof requester !== 'object' || requester === null || !Number.isSafeInteger(requester.uid) || typeof requester.sid !== 'string' || !Number.isSafeInteger(requester.debugPid)) {
		throw new InvalidConfigError('requester', 'must be {uid: integer, sid: string, debugPid: integer}');
	}

	return {requester: {uid: requester.uid, sid: requester.sid, debugPid: requester.debugPid}, payloadChannel, restartPolicy: options.restartPolicy};
}

const RESTART_STATES: ReadonlyArray<readonly [string, SupervisionState]> = [
	['Idle', 'idle'], ['Alive', 'alive'], ['Ending', 'ending'], ['Backoff', 'backoff'], ['Restarting', 'restarting'],
];

const OUTCOME_STATES: Record<RestartOutcome, SupervisionState> = {ended: 'ended', 'gave-up': 'gave-up', cancelled: 'cancelled'};

interface SupervisedVmParts {
	first: Vm;
	/** Its restart machine, when it is alone and its policy may restart it. */
	restart: RestartActorRef | undefined;
	/** Its group's id: the group then reports its end through `finish`. */
	group: string | undefined;
	policy: RestartPolicy;
	start: () => Promise<void>;
	/** Tells the supervisor that no restart may follow (a stop or kill through the handle). */
	end: () => void;
	publish: (event: SupervisorEvent) => void;
	logger: winston.Logger;
}

/**
 * The supervisor's handle on a VM: one `Vm` per life behind it, `start` going through the supervisor,
 * and the final death taken from the restart machine's output, from the group's report, or, for a
 * VM that is never restarted, from its only life.
 */
function supervisedVm(parts: SupervisedVmParts): {
	vm: SupervisedVm;
	adoptLife: (life: Vm) => void;
	finish: (outcome: RestartOutcome, death: VmDeath | undefined) => void;
	abandon: () => void;
} {
	const vm = new SupervisedVmHandle(parts);
	return {
		vm,
		adoptLife(next) {
			vm.adoptLife(next);
		},
		finish(ended, death) {
			vm.finish(ended, death);
		},
		abandon() {
			vm.abandon();
		},
	};
}

/**
 * See `supervisedVm`. A class, not an object literal of closures: a fleet holds one per VM, V8 keeps
 * an object literal with getters as a dictionary, and the subjects, the `died` promise and the
 * callback sets are made only for the callers that ask for them.
 */
class SupervisedVmHandle implements SupervisedVm {
	readonly restartPolicy: RestartPolicy;
	readonly group: string | undefined;
	readonly #parts: SupervisedVmParts;
	#life: Vm;
	#restarts = 0;
	#events: Subject<VmEvent> | undefined;
	#supervision: Subject<RestartEmitted> | undefined;
	#events$: Observable<VmEvent> | undefined;
	#supervision$: Observable<RestartEmitted> | undefined;
	readonly #deaths: VmDeath[] = [];
	readonly #deathCallbacks = new Callbacks<VmDeath>();
	readonly #diedCallbacks = new Callbacks<VmDeath>();
	readonly #finalDeath = new OnDemandPromise<VmDeath>();
	#outcome: RestartOutcome | undefined;
	/** Settled once the VM is over: its outcome is known. */
	readonly #over = new OnDemandPromise<void>();
	#operations: VmOperations | undefined;

	constructor(parts: SupervisedVmParts) {
		const {first, restart, group, policy} = parts;
		this.#parts = parts;
		this.#life = first;
		this.restartPolicy = policy;
		this.group = group;
		this.#follow(first);
		if (restart !== undefined) {
			restart.on('*', event => {
				parts.publish(event);
				this.#supervision?.next(event);
			});
			restart.subscribe({
				next: snapshot => {
					if (snapshot.status === 'done') {
						this.finish(snapshot.output.outcome, snapshot.output.death);
					}
				},
				error: () => {
					this.finish('ended', this.#deaths.at(-1));
				},
				complete: () => {
					// Stopped by the supervisor without reaching a final state: its VM actor failed.
					this.finish('ended', this.#deaths.at(-1));
				},
			});
		}
	}

	get cid(): number {
		return this.#life.cid;
	}

	get state(): VmState {
		return this.#life.state;
	}

	get payloadState(): PayloadState {
		return this.#life.payloadState;
	}

	get pid(): number | undefined {
		return this.#life.pid;
	}

	get tempDir(): string | undefined {
		return this.#life.tempDir;
	}

	get actor(): VmActor {
		return this.#life.actor;
	}

	get snapshots$(): Observable<VmSnapshot> {
		return this.#life.snapshots$;
	}

	get restarts(): number {
		return this.#restarts;
	}

	get deaths(): VmDeath[] {
		return [...this.#deaths];
	}

	get died(): Promise<VmDeath> {
		return this.#finalDeath.promise;
	}

	get events$(): Observable<VmEvent> {
		this.#events$ ??= this.#ended$(() => {
			this.#events ??= new Subject<VmEvent>();
			return this.#events;
		});
		return this.#events$;
	}

	get supervision$(): Observable<RestartEmitted> {
		this.#supervision$ ??= this.#ended$(() => {
			this.#supervision ??= new Subject<RestartEmitted>();
			return this.#supervision;
		});
		return this.#supervision$;
	}

	get supervision(): SupervisionState {
		const {restart, group} = this.#parts;
		if (this.#outcome !== undefined) {
			return OUTCOME_STATES[this.#outcome];
		}

		if (restart !== undefined) {
			const snapshot = restart.getSnapshot();
			return RESTART_STATES.find(([state]) => snapshot.matches(state as 'Idle'))?.[1] ?? 'ended';
		}

		if (group === undefined) {
			return 'unsupervised';
		}

		return this.#neverStarted() ? 'idle' : this.#isLive() ? 'alive' : 'backoff';
	}

	// The operations follow the current life: a restarted VM is suspended, ballooned and watched anew.
	get execution(): VmExecution | undefined {
		return this.#lifeOperations().execution;
	}

	get console$(): Observable<string> {
		return this.#lifeOperations().console$;
	}

	get log$(): Observable<string> {
		return this.#lifeOperations().log$;
	}

	async suspend(): Promise<void> {
		await this.#lifeOperations().suspend();
	}

	async resume(): Promise<void> {
		await this.#lifeOperations().resume();
	}

	async setBalloon(bytes: number): Promise<void> {
		await this.#lifeOperations().setBalloon(bytes);
	}

	async balloonStats(): Promise<BalloonStats> {
		return this.#lifeOperations().balloonStats();
	}

	onDied(callback: (death: VmDeath) => void): () => void {
		const death = this.#finalDeath.value;
		if (death !== undefined) {
			callback(death);
			return () => undefined;
		}

		return this.#diedCallbacks.add(callback);
	}

	onDeath(callback: (death: VmDeath) => void): () => void {
		return this.#deathCallbacks.add(callback);
	}

	// Not async, and neither is `parts.start` (which never throws): a fleet's start() calls in one
	// tick each hold what they make until their turn, and each async frame would add a promise and a
	// generator to it.
	start(): Promise<void> {
		return this.#parts.start();
	}

	async stop(stopOptions?: {timeoutMs?: number}): Promise<VmDeath | undefined> {
		const {restart, group, end} = this.#parts;
		if (restart === undefined && group === undefined) {
			return this.#life.stop(stopOptions);
		}

		end();
		if (this.#neverStarted()) {
			return undefined;
		}

		if (this.#isLive()) {
			await this.#life.stop(stopOptions);
		}

		await this.#over.promise;
		return this.#finalDeath.value;
	}

	kill(): void {
		if (this.#parts.restart !== undefined || this.#parts.group !== undefined) {
			this.#parts.end();
		}

		this.#life.kill();
	}

	updatePayloadState(state: PayloadState): void {
		this.#life.updatePayloadState(state);
	}

	adoptLife(next: Vm): void {
		this.#life = next;
		this.#restarts++;
		this.#follow(next);
	}

	finish(ended: RestartOutcome, death: VmDeath | undefined): void {
		if (this.#outcome !== undefined) {
			return;
		}

		this.#outcome = ended;
		if (death !== undefined) {
			this.#finalDeath.resolve(death);
			this.#diedCallbacks.call(death, error => {
				this.#logCallbackError(error);
			}, {once: true});
		}

		this.#over.resolve();
		this.#events?.complete();
		this.#supervision?.complete();
	}

	/** An observable of one of the subjects, completed at once once the VM is over. */
	#ended$<T>(subject: () => Subject<T>): Observable<T> {
		return new Observable<T>(subscriber => this.#outcome === undefined ? subject().subscribe(subscriber) : subscriber.complete());
	}

	#follow(current: Vm): void {
		const {restart, group, publish, policy} = this.#parts;
		// Neither restarted nor grouped: the first life is the only one, and ends with a death or a
		// failed start.
		const only = restart === undefined && group === undefined;
		current.events$.subscribe(event => {
			publish(event);
			this.#events?.next(event);
			if (only && event.type === 'failed') {
				this.finish('ended', undefined);
			}
		});
		current.onDied(death => {
			this.#deaths.push(death);
			this.#deaths.splice(0, Math.max(0, this.#deaths.length - policy.historySize));
			this.#deathCallbacks.call(death, error => {
				this.#logCallbackError(error);
			});
			if (only) {
				this.finish('ended', death);
			}
		});
	}

	/**
	 * The supervisor actor is gone (stopped by hand or failed), and with it the restart machine's or
	 * the group's verdict: the VM is over (`ended`) once its current life is, with its last death.
	 * A VM without either is over with its only life already.
	 */
	abandon(): void {
		const {restart, group} = this.#parts;
		if (this.#outcome !== undefined || (restart === undefined && group === undefined)) {
			return;
		}

		const {actor} = this.#life;
		const over = () => {
			this.finish('ended', this.#deaths.at(-1));
		};

		if (actor.getSnapshot().status !== 'active' || actor.getSnapshot().matches({NotStarted: 'idle'})) {
			over();
			return;
		}

		// Its death (if any) is recorded by #follow before the actor completes.
		actor.subscribe({complete: over, error: over});
	}

	#logCallbackError(error: unknown): void {
		this.#parts.logger.error(`A death callback threw: ${String(error)}`);
	}

	#lifeOperations(): VmOperations {
		this.#operations ??= vmOperations(this);
		return this.#operations;
	}

	#neverStarted(): boolean {
		return this.#restarts === 0 && this.#life.actor.getSnapshot().matches({NotStarted: 'idle'});
	}

	#isLive(): boolean {
		const {actor} = this.#life;
		return actor.getSnapshot().status === 'active' && (this.#life.state === 'Running' || actor.getSnapshot().matches({NotStarted: 'launching'}));
	}
}
