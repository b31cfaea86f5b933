import {Observable, Subject} from 'rxjs';
import {createActor, type Actor, type InspectionEvent, type Observer} from 'xstate';
import type winston from 'winston';
import {SupervisorShutDownError, SupervisorBusyError} from './errors.js';
import {supervisorMachine, vmActorId, type SupervisorMachineEmitted, type VmActorRef, type VmDefaults} from './machines/supervisor.machine.js';
import {validateCidRange} from './services/cids/allocator.js';
import {ensureStateDir, readLastCid} from './services/cids/store.js';
import type {CrosvmDialect} from './services/crosvm/command.js';
import {claimStateDir, readVmRecords} from './services/state-dir/stale-vms.js';
import {validateConfig} from './services/config/validate.js';
import type {VmConfig} from './services/config/vm-config.js';
import type {VmmDriver} from './services/vmm/driver.js';
import {createVmHandle, vmMachineInput, type Vm} from './vm.js';
import {DEFAULT_CID_RANGE, type CidRange} from './services/cids/range.js';
import {defaultRequester, type Requester, type VmEvent} from './types.js';
export {NoAvailableCidError, SupervisorShutDownError} from './errors.js';
export {DEFAULT_CID_RANGE, type CidRange} from './services/cids/range.js';

export type {ReapedVm, StaleVmOutcome} from './services/state-dir/stale-vms.js';

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
	 * Allocates a CID and creates a VM (not started: call `start()`). Throws `InvalidConfigError`
	 * (nothing held), `NoAvailableCidError` or `SupervisorShutDownError`.
	 */
	createVm(config: VmConfig, options?: CreateSupervisedVmOptions): Vm;
	/** The VM holding `cid`, until its CID is released (dead and cleaned up). */
	get(cid: number): Vm | undefined;
	/** Every VM holding a CID, in CID order. */
	vms(): Vm[];
	/** Every lifecycle event of every VM, and the supervisor's own events, in order. */
	readonly events$: Observable<SupervisorEvent>;
	/** Resolves once the VMs a previous instance left in `stateDir` are reaped (at once without one). */
	readonly reaped: Promise<void>;
	/**
	 * Stops every VM in parallel (graceful, then SIGKILL after `stopTimeoutMs`) and resolves when all
	 * are dead, reported and cleaned up. Later `createVm` calls are refused. Idempotent.
	 */
	shutdown(options?: {stopTimeoutMs?: number}): Promise<void>;
	readonly actor: Actor<typeof supervisorMachine>;
}

/**
 * Creates a supervisor. With `stateDir`, it takes the directory over (refusing one a live supervisor
 * owns), reads the last allocated CID, and reaps the VMs a previous instance left running.
 */
export function createSupervisor(options: SupervisorOptions = {}): Supervisor {
	const cidRange = validateCidRange(options.cidRange ?? DEFAULT_CID_RANGE);
	const {config: _config, cid: _cid, requester: _requester, payloadChannel: _payloadChannel, ...vmDefaults} = vmMachineInput({}, {
		cid: cidRange.first,
		crosvmPath: options.crosvmPath,
		dialect: options.dialect,
		driver: options.driver,
		tempRoot: options.tempRoot,
		logger: options.logger,
		bootHangupTimeoutMs: options.bootHangupTimeoutMs,
		stopTimeoutMs: options.stopTimeoutMs,
	});
	const defaults: VmDefaults = vmDefaults;
	const {stateDir} = options;
	let releaseStateDir = () => undefined as void;
	let lastAllocatedCid: number | undefined;
	let staleVms: ReturnType<typeof readVmRecords> = [];
	if (stateDir !== undefined) {
		ensureStateDir(stateDir);
		releaseStateDir = claimStateDir(stateDir);
		lastAllocatedCid = readLastCid(stateDir);
		staleVms = readVmRecords(stateDir);
	}

	const actor = createActor(supervisorMachine, {
		input: {cidRange, lastAllocatedCid, staleVms, stateDir, vmDefaults: defaults},
		inspect: options.inspect,
	});

	// Events are delivered in order from a microtask, never from inside an actor's transition, so a
	// subscriber may call createVm (or anything else) from its callback.
	const events = new Subject<SupervisorEvent>();
	const pending: SupervisorEvent[] = [];
	let flushScheduled = false;
	const flush = () => {
		flushScheduled = false;
		for (const event of pending.splice(0)) {
			events.next(event);
		}
	};

	const publish = (event: SupervisorEvent) => {
		pending.push(event);
		if (!flushScheduled) {
			flushScheduled = true;
			queueMicrotask(flush);
		}
	};

	const handles = new Map<number, Vm>();
	actor.on('*', event => {
		if (event.type === 'supervisor.cid.released') {
			handles.delete(event.cid);
		}

		publish(event);
	});

	let resolveReaped!: () => void;
	const reaped = new Promise<void>(resolve => {
		resolveReaped = resolve;
	});
	let resolveDone!: () => void;
	const done = new Promise<void>(resolve => {
		resolveDone = resolve;
	});
	actor.subscribe({
		next(snapshot) {
			if (snapshot.matches({Serving: {reaper: 'Reaped'}}) || snapshot.status === 'done') {
				resolveReaped();
			}

			if (snapshot.status === 'done') {
				releaseStateDir();
				// After the last event is out.
				queueMicrotask(() => {
					flush();
					events.complete();
					resolveDone();
				});
			}
		},
		error(error) {
			defaults.logger.error(`The supervisor actor failed: ${String(error)}`);
			releaseStateDir();
			resolveReaped();
			resolveDone();
		},
	});
	actor.start();

	let shuttingDown = false;
	let nextRequestId = 0;

	const guardStart = (vm: Vm): Vm => {
		const {start} = vm;
		return Object.defineProperties(vm, {
			start: {
				value: async () => {
					if (shuttingDown && vm.state === 'NotStarted') {
						throw new SupervisorShutDownError();
					}

					return start();
				},
			},
		});
	};

	return {
		createVm(config, vmOptions = {}) {
			if (shuttingDown) {
				throw new SupervisorShutDownError();
			}

			validateConfig(config);
			const requestId = ++nextRequestId;
			const ticket = {abandoned: false};
			actor.send({
				type: 'VM.CREATE',
				requestId,
				config,
				requester: vmOptions.requester ?? defaultRequester(),
				payloadChannel: vmOptions.payloadChannel ?? true,
				ticket,
			});
			const outcome = actor.getSnapshot().context.lastCreation;
			if (outcome?.requestId !== requestId) {
				// Queued behind the event being processed: withdraw it, it would have no handle.
				ticket.abandoned = true;
				throw actor.getSnapshot().status === 'active' ? new SupervisorBusyError() : new SupervisorShutDownError();
			}

			if (outcome.error !== undefined) {
				throw outcome.error;
			}

			const child = actor.getSnapshot().children[vmActorId(outcome.cid)] as VmActorRef;
			const vm = guardStart(createVmHandle(child));
			handles.set(outcome.cid, vm);
			vm.events$.subscribe(publish);
			return vm;
		},
		get(cid) {
			return handles.get(cid);
		},
		vms() {
			return [...handles.values()].sort((a, b) => a.cid - b.cid);
		},
		events$: events.asObservable(),
		reaped,
		async shutdown(shutdownOptions = {}) {
			shuttingDown = true;
			if (actor.getSnapshot().status === 'active') {
				actor.send({type: 'SHUTDOWN', stopTimeoutMs: shutdownOptions.stopTimeoutMs});
			}

			await done;
		},
		actor,
	};
}
