import type {Observable} from 'rxjs';
import {createActor, type Actor, type InspectionEvent, type Observer} from 'xstate';
import type winston from 'winston';
import {InvalidConfigError, SupervisorFailedError, SupervisorShutDownError} from './errors.js';
import {supervisorMachine, type SupervisorMachineEmitted, type SupervisorMachineEvent, type SupervisorReply, type VmActorRef, type VmDefaults} from './machines/supervisor.machine.js';
import {validateCidRange} from './services/cids/allocator.js';
import type {CrosvmDialect} from './services/crosvm/command.js';
import {checkTimeoutMs} from './services/config/timeouts.js';
import {openStateDir, type OpenedStateDir} from './services/state-dir/open.js';
import type {FilePolicy} from './services/config/file-policy.js';
import {validateConfig} from './services/config/validate.js';
import type {VmConfig} from './services/config/vm-config.js';
import {createEventChannel} from './services/events/event-channel.js';
import type {VmmDriver} from './services/vmm/driver.js';
import {createVmHandle, vmMachineInput, type Vm} from './vm.js';
import {DEFAULT_CID_RANGE, type CidRange} from './services/cids/range.js';
import {defaultRequester, type Requester, type VmEvent} from './types.js';
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
	logger?: winston.Logger;
	/** An XState inspector: it sees the supervisor and every VM actor (one actor system). */
	inspect?: Observer<InspectionEvent> | ((event: InspectionEvent) => void);
	/** Default 10 s, 100 s under nested virtualization. */
	bootHangupTimeoutMs?: number;
	/** How long a stop waits before killing. Default 5 s. */
	stopTimeoutMs?: number;
	/** What every VM config's files may be: see docs/security.md. Default `{}`, the strict policy. */
	filePolicy?: FilePolicy;
}

export interface CreateSupervisedVmOptions {
	/** Default: this process (uid, `''`, pid). */
	requester?: Requester;
	/** Give the guest the payload report channel. Default true. */
	payloadChannel?: boolean;
}

/** A supervisor event: a VM's lifecycle event (with its CID and initiator) or the supervisor's own. */
export type SupervisorEvent = VmEvent | SupervisorMachineEmitted;

export interface Supervisor {
	/**
	 * Allocates a CID and creates a VM (not started: call `start()`). Works from anywhere, including
	 * an `events$` subscriber or an `onDied` callback. Rejects with `InvalidConfigError` (nothing
	 * held), `NoAvailableCidError` or `SupervisorShutDownError`.
	 */
	createVm(config: VmConfig, options?: CreateSupervisedVmOptions): Promise<Vm>;
	/** The VM holding `cid`, until its CID is released (dead and cleaned up). */
	get(cid: number): Vm | undefined;
	/** Every VM holding a CID, in CID order. */
	vms(): Vm[];
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
		logger: options.logger,
		bootHangupTimeoutMs: options.bootHangupTimeoutMs,
		stopTimeoutMs: options.stopTimeoutMs,
		filePolicy: options.filePolicy,
	});
	// Throws InvalidConfigError naming stateDir, holding nothing; once it returns, the lock is ours.
	const stateDir = options.stateDir === undefined ? undefined : openStateDir(options.stateDir);
	try {
		if (stateDir?.lastCidProblem !== undefined) {
			vmDefaults.logger.warn(`State directory: ${stateDir.lastCidProblem}; allocating from the bottom of the CID range`);
		}

		for (const name of stateDir?.strays ?? []) {
			vmDefaults.logger.warn(`State directory: ${options.stateDir}/vms/${name} is no record of ours: left alone`);
		}

		return supervise({cidRange, vmDefaults, stateDir: options.stateDir, opened: stateDir, inspect: options.inspect});
	} catch (error) {
		stateDir?.release();
		throw error;
	}
}

function supervise({cidRange, vmDefaults, stateDir, opened, inspect}: {
	cidRange: CidRange;
	vmDefaults: VmDefaults;
	stateDir: string | undefined;
	opened: OpenedStateDir | undefined;
	inspect: SupervisorOptions['inspect'];
}): Supervisor {
	const {logger} = vmDefaults;
	const actor = createActor(supervisorMachine, {
		input: {cidRange, lastAllocatedCid: opened?.lastAllocatedCid, staleVms: opened?.staleVms ?? [], stateDir, vmDefaults},
		inspect,
	});
	const channel = createEventChannel<SupervisorEvent>(error => {
		logger.error(`An events$ subscriber threw: ${String(error)}`);
	});
	const handles = new Map<number, Vm>();
	const pending = new Map<number, PendingRequest>();
	let lastRequestId = 0;

	actor.on('*', event => {
		if ('requestId' in event) {
			const request = pending.get(event.requestId);
			pending.delete(event.requestId);
			request?.answer(event);
			return;
		}

		if (event.type === 'supervisor.cid.released') {
			handles.delete(event.cid);
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

	/** The actor is gone: nobody is left to answer, so every pending request is refused. */
	const abandon = (error: Error) => {
		for (const request of pending.values()) {
			request.fail(error);
		}

		pending.clear();
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
			// Never expected (a failed state write is reported, not thrown): the actor stopped its VMs.
			logger.error(`The supervisor actor failed: ${String(error)}`);
			abandon(new SupervisorFailedError(error));
		},
		complete() {
			// Only when someone stops `actor` by hand (ShutDown is not final): its VMs were stopped with it.
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
						reject(error);
					}
				}
			},
			fail: reject,
		});
		actor.send(build(requestId));
	});

	const adopt = (ref: VmActorRef): Vm => {
		const handle = createVmHandle(ref);
		// Starting goes through the supervisor: its machine refuses once it is shutting down, and
		// otherwise lets the handle start the VM within the same step, before a shutdown can interleave.
		const vm = supervisedVm(handle, async () => ask('supervisor.vm.startAccepted', requestId => ({type: 'VM.START', requestId}), async () => handle.start()));
		handles.set(vm.cid, vm);
		vm.events$.subscribe(event => {
			channel.publish(event);
		});
		return vm;
	};

	return {
		async createVm(config, vmOptions = {}) {
			const {requester, payloadChannel} = checkCreateOptions(vmOptions);
			validateConfig(config, vmDefaults.filePolicy, requester);
			return ask('supervisor.vm.created', requestId => ({type: 'VM.CREATE', requestId, config, requester, payloadChannel}), reply => adopt(reply.vm));
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
function checkCreateOptions(options: CreateSupervisedVmOptions): Required<CreateSupervisedVmOptions> {
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

	return {requester: {uid: requester.uid, sid: requester.sid, debugPid: requester.debugPid}, payloadChannel};
}

/** The supervisor's view of a VM handle: the same VM, with `start` going through the supervisor. */
function supervisedVm(handle: Vm, start: () => Promise<void>): Vm {
	return {
		get cid() {
			return handle.cid;
		},
		get state() {
			return handle.state;
		},
		get payloadState() {
			return handle.payloadState;
		},
		get pid() {
			return handle.pid;
		},
		get tempDir() {
			return handle.tempDir;
		},
		died: handle.died,
		onDied: callback => handle.onDied(callback),
		snapshots$: handle.snapshots$,
		events$: handle.events$,
		actor: handle.actor,
		start,
		stop: async stopOptions => handle.stop(stopOptions),
		kill() {
			handle.kill();
		},
		updatePayloadState(state) {
			handle.updatePayloadState(state);
		},
	};
}
