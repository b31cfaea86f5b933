import {assertEvent, assign, emit, enqueueActions, fromPromise, setup, stopChild, type ActorRefFrom, type AnyStateMachine, type DoneActorEvent, type ErrorActorEvent, type SnapshotFrom} from 'xstate';
import {NoAvailableCidError, SupervisorShutDownError} from '../errors.js';
import {allocateCid, createCidPool, describeCidPool, hasFreeCid, releaseCid, type CidPool} from '../services/cids/allocator.js';
import {writeLastCid} from '../services/cids/store.js';
import {processIdentity} from '../services/state-dir/process-identity.js';
import {removeVmRecord, writeVmRecord, type StaleVmEntry} from '../services/state-dir/records.js';
import {reapStateDir, type StaleVmReport} from '../services/state-dir/reap.js';
import type {StateDirWrite} from '../services/state-dir/files.js';
import type {VmConfig} from '../services/config/vm-config.js';
import {vmMachine, type VmMachineInput, type VmOutput} from './vm.machine.js';
import {type CidRange} from '../services/cids/range.js';
import {type Requester} from '../types.js';

/** The VM actors the supervisor spawns. */
export type VmActorRef = ActorRefFrom<typeof vmMachine>;

type VmSnapshot = SnapshotFrom<typeof vmMachine>;

/** What every VM of this supervisor shares; each `createVm` adds its config, requester and channel. */
export type VmDefaults = Omit<VmMachineInput, 'config' | 'cid' | 'requester' | 'payloadChannel'>;

export interface SupervisorMachineInput {
	cidRange: CidRange;
	/** The last CID the previous instance allocated, read from the state directory. */
	lastAllocatedCid: number | undefined;
	/** The previous instance's VMs: their CIDs stay held until they are reaped. */
	staleVms: StaleVmEntry[];
	stateDir: string | undefined;
	vmDefaults: VmDefaults;
}

/** A request to create a VM; the machine answers it with a `SupervisorReply` of the same `requestId`. */
export interface CreateVmRequest {
	requestId: number;
	config: VmConfig;
	requester: Requester;
	payloadChannel: boolean;
}

/** A VM the supervisor holds: its CID stays allocated until the actor is final and released. */
export interface HeldVm {
	cid: number;
	ref: VmActorRef;
}

export interface SupervisorContext {
	/** Updated in place: see `CidPool`. Shown to the inspector as a summary. */
	pool: CidPool;
	stateDir: string | undefined;
	vmDefaults: VmDefaults;
	/** The VMs by actor id (`vm.<cid>`), from allocation until their CID is released. Updated in place. */
	vms: Map<string, HeldVm>;
	/** CIDs whose running VMM is recorded in the state directory. */
	recorded: Set<number>;
	staleVms: StaleVmEntry[];
	/** The stop timeout `shutdown()` asked for, if any. */
	shutdownStopTimeoutMs: number | undefined;
	/** During shutdown: the actor ids of the VMs not yet sent STOP. */
	stopQueue: string[];
}

/** The id of the VM actor with `cid`. Dotted, so that `xstate.done.actor.vm.*` names the VMs and nothing else. */
export function vmActorId(cid: number): VmActorId {
	return `vm.${cid}`;
}

export type VmActorId = `vm.${number}`;

export type SupervisorMachineEvent =
	| ({type: 'VM.CREATE'} & CreateVmRequest)
	/** The façade asks whether a VM may start; it starts it when the answer is `supervisor.vm.startAccepted`. */
	| {type: 'VM.START'; requestId: number}
	| {type: 'SHUTDOWN'; stopTimeoutMs?: number}
	| {type: 'STOP.NEXT_BATCH'}
	| DoneActorEvent<VmOutput, VmActorId>
	| ErrorActorEvent<unknown, VmActorId>
	| {type: `xstate.snapshot.${VmActorId}`; snapshot: VmSnapshot};

/** What went wrong writing the state directory: the supervisor goes on, the successor may know less. */
export type StateWrite = 'last-cid' | 'vm-record' | 'vm-record-removal';

/** What the supervisor itself reports; `createSupervisor` merges it with its VMs' events. */
export type SupervisorMachineEmitted =
	| {type: 'supervisor.cid.allocated'; cid: number; cause: 'createVm'; initiator: 'caller'}
	| {type: 'supervisor.cid.released'; cid: number; cause: 'vm cleaned up' | 'vm actor failed' | 'vm never started' | 'stale vm reaped'; initiator: 'supervisor'}
	| ({type: 'supervisor.staleVm.reaped'; cause: string; initiator: 'supervisor'} & StaleVmReport)
	| {type: 'supervisor.state.writeFailed'; write: StateWrite; cid: number; stateDir: string; cause: string; initiator: 'supervisor'}
	| {type: 'supervisor.shutdown.started'; cause: 'shutdown()'; initiator: 'caller'; vms: number}
	| {type: 'supervisor.shutdown.completed'; cause: 'shutdown()'; initiator: 'caller'};

/** The machine's answers to `VM.CREATE` and `VM.START`, for the façade that asked (not published). */
export type SupervisorReply =
	| {type: 'supervisor.vm.created'; requestId: number; cid: number; vm: VmActorRef}
	| {type: 'supervisor.vm.startAccepted'; requestId: number}
	| {type: 'supervisor.vm.refused'; requestId: number; error: NoAvailableCidError | SupervisorShutDownError};

// Registered as a plain state machine: the declaration of `supervisorMachine` cannot spell out the
// VM machine's internal actor types (vm.machine.ts does not export them), so the spawned ref is
// typed as VmActorRef where it is spawned, and its input checked with `satisfies`.
const vmLogic: AnyStateMachine = vmMachine;

/** How many VMs are sent STOP per macrotask during shutdown. */
export const STOP_BATCH_SIZE = 8;

/** The VMM's pid and temporary directory, once the VM snapshot says it runs. */
function runningVmmOf(snapshot: VmSnapshot): {pid: number; tempDir: string} | undefined {
	const {pid, tempDir} = snapshot.context;
	return snapshot.matches('Running') && pid !== undefined && tempDir !== undefined ? {pid, tempDir} : undefined;
}

/** The event reporting a failed state-directory write, or `undefined` when it succeeded. */
function failedWrite(result: StateDirWrite, write: StateWrite, cid: number, stateDir: string): Extract<SupervisorMachineEmitted, {type: 'supervisor.state.writeFailed'}> | undefined {
	return result.ok ? undefined : {type: 'supervisor.state.writeFailed', write, cid, stateDir, cause: result.error.reason, initiator: 'supervisor'};
}

/**
 * One supervisor per host: owns every VM actor (spawned as its children, so one actor system),
 * allocates their vsock CIDs, reaps what a previous instance left running, and stops the fleet.
 * Writing the state directory never fails the machine: a failed write is logged and reported as
 * `supervisor.state.writeFailed`, and the supervisor goes on.
 */
export const supervisorMachine = setup({
	types: {
		context: {} as SupervisorContext,
		events: {} as SupervisorMachineEvent,
		input: {} as SupervisorMachineInput,
		emitted: {} as SupervisorMachineEmitted | SupervisorReply,
	},
	actors: {
		vm: vmLogic,
		reapStaleVms: fromPromise<StaleVmReport[], {stateDir: string; entries: StaleVmEntry[]}>(async ({input}) => reapStateDir(input.stateDir, input.entries)),
	},
	delays: {
		// Zero: the next batch goes out on the next macrotask, after pending I/O callbacks.
		stopBatchPause: 0,
	},
	guards: {
		hasFreeCid: ({context}) => hasFreeCid(context.pool),
		isHeldVm({context, event}) {
			assertEvent(event, ['xstate.done.actor.vm.*', 'xstate.error.actor.vm.*']);
			return context.vms.has(event.actorId);
		},
		vmRunningUnrecorded({context, event}) {
			assertEvent(event, 'xstate.snapshot.vm.*');
			return context.stateDir !== undefined && !context.recorded.has(event.snapshot.context.cid) && runningVmmOf(event.snapshot) !== undefined;
		},
		fleetIsEmpty: ({context}) => context.vms.size === 0,
		nothingToReap: ({context}) => context.stateDir === undefined || context.staleVms.length === 0,
	},
	actions: {
		allocateAndSpawnVm: assign(({context, event, spawn}) => {
			assertEvent(event, 'VM.CREATE');
			const {config, requester, payloadChannel} = event;
			const cid = allocateCid(context.pool);
			const id = vmActorId(cid);
			const ref: VmActorRef = spawn('vm', {id, syncSnapshot: true, input: {...context.vmDefaults, config, cid, requester, payloadChannel} satisfies VmMachineInput});
			context.vms.set(id, {cid, ref});
			return {vms: context.vms};
		}),
		persistLastCid: enqueueActions(({context, enqueue}) => {
			const {stateDir, pool: {lastAllocated: cid}} = context;
			if (stateDir === undefined || cid === undefined) {
				return;
			}

			const failure = failedWrite(writeLastCid(stateDir, cid), 'last-cid', cid, stateDir);
			if (failure !== undefined) {
				context.vmDefaults.logger.error(`Could not write the last CID ${cid}: ${failure.cause}`);
				enqueue.emit(failure);
			}
		}),
		// After allocateAndSpawnVm: the pool's last allocated CID is the new VM's.
		reportVmCreated: enqueueActions(({context, event, enqueue}) => {
			assertEvent(event, 'VM.CREATE');
			const {lastAllocated: cid} = context.pool;
			const held = cid === undefined ? undefined : context.vms.get(vmActorId(cid));
			if (held !== undefined) {
				enqueue.emit({type: 'supervisor.cid.allocated', cid: held.cid, cause: 'createVm', initiator: 'caller'});
				enqueue.emit({type: 'supervisor.vm.created', requestId: event.requestId, cid: held.cid, vm: held.ref});
			}
		}),
		refuseNoCid: emit(({context, event}) => {
			assertEvent(event, 'VM.CREATE');
			return {type: 'supervisor.vm.refused' as const, requestId: event.requestId, error: new NoAvailableCidError(context.pool.range)};
		}),
		refuseShutDown: emit(({event}) => {
			assertEvent(event, ['VM.CREATE', 'VM.START']);
			return {type: 'supervisor.vm.refused' as const, requestId: event.requestId, error: new SupervisorShutDownError()};
		}),
		acceptStart: emit(({event}) => {
			assertEvent(event, 'VM.START');
			return {type: 'supervisor.vm.startAccepted' as const, requestId: event.requestId};
		}),
		recordRunningVm: enqueueActions(({context, enqueue}, params: {snapshot: VmSnapshot}) => {
			const {stateDir} = context;
			const vmm = runningVmmOf(params.snapshot);
			const {cid} = params.snapshot.context;
			const identity = vmm === undefined ? undefined : processIdentity(vmm.pid);
			if (stateDir === undefined || vmm === undefined || identity === undefined) {
				// Already gone: its death is on its way, and there is nothing a successor could kill.
				return;
			}

			const record = {cid, pid: vmm.pid, startTime: identity.startTime, tempDir: vmm.tempDir, supervisorPid: process.pid};
			const failure = failedWrite(writeVmRecord(stateDir, record), 'vm-record', cid, stateDir);
			if (failure !== undefined) {
				context.vmDefaults.logger.error(`Could not record VM ${cid}: ${failure.cause}`);
				enqueue.emit(failure);
			}
		}),
		markVmRecorded: assign(({context}, params: {snapshot: VmSnapshot}) => ({
			recorded: new Set(context.recorded).add(params.snapshot.context.cid),
		})),
		forgetVmRecord: enqueueActions(({context, enqueue}, params: {actorId: string}) => {
			const {stateDir} = context;
			const held = context.vms.get(params.actorId);
			if (stateDir === undefined || held === undefined || !context.recorded.has(held.cid)) {
				return;
			}

			const failure = failedWrite(removeVmRecord(stateDir, held.cid), 'vm-record-removal', held.cid, stateDir);
			if (failure !== undefined) {
				// The successor finds the record, sees the process gone and removes it then.
				context.vmDefaults.logger.error(`Could not remove the record of VM ${held.cid}: ${failure.cause}`);
				enqueue.emit(failure);
			}
		}),
		logVmActorFailure: ({context, event}) => {
			assertEvent(event, 'xstate.error.actor.vm.*');
			context.vmDefaults.logger.error(`VM actor ${event.actorId} failed: ${String(event.error)}`);
		},
		releaseVm: enqueueActions(({context, enqueue}, params: {actorId: string; cause: 'vm cleaned up' | 'vm actor failed'}) => {
			const held = context.vms.get(params.actorId);
			if (held === undefined) {
				return;
			}

			const recorded = new Set(context.recorded);
			recorded.delete(held.cid);
			context.vms.delete(params.actorId);
			releaseCid(context.pool, held.cid);
			enqueue(stopChild(held.ref));
			enqueue.assign({vms: context.vms, recorded});
			enqueue.emit({type: 'supervisor.cid.released', cid: held.cid, cause: params.cause, initiator: 'supervisor'});
		}),
		releaseStaleCids: enqueueActions(({context, enqueue}, reports: StaleVmReport[]) => {
			for (const report of reports) {
				enqueue.emit({type: 'supervisor.staleVm.reaped', ...report, cause: report.reason, initiator: 'supervisor'});
				// A record the reaper could not prove keeps its CID held: its VM may still use it.
				if (report.cidReleased) {
					releaseCid(context.pool, report.cid);
					enqueue.emit({type: 'supervisor.cid.released', cid: report.cid, cause: 'stale vm reaped', initiator: 'supervisor'});
				}
			}

			enqueue.assign({staleVms: []});
		}),
		logReapFailure: ({context}, params: {error: unknown}) => {
			context.vmDefaults.logger.error(`Reaping the previous supervisor's VMs failed: ${String(params.error)}`);
		},
		recordShutdownTimeout: assign(({event}) => {
			assertEvent(event, 'SHUTDOWN');
			return {shutdownStopTimeoutMs: event.stopTimeoutMs};
		}),
		emitShutdownStarted: emit(({context}) => ({type: 'supervisor.shutdown.started' as const, cause: 'shutdown()' as const, initiator: 'caller' as const, vms: context.vms.size})),
		discardUnstartedVms: enqueueActions(({context, enqueue}) => {
			for (const [id, {cid, ref}] of context.vms) {
				if (ref.getSnapshot().matches({NotStarted: 'idle'})) {
					// Never started: nothing runs and nothing was created, so there is nothing to stop.
					// Its handle's start() now asks a Draining supervisor, which refuses it.
					context.vms.delete(id);
					releaseCid(context.pool, cid);
					enqueue(stopChild(ref));
					enqueue.emit({type: 'supervisor.cid.released', cid, cause: 'vm never started', initiator: 'supervisor'});
				}
			}

			enqueue.assign({vms: context.vms, stopQueue: [...context.vms.keys()]});
		}),
		stopNextBatch: enqueueActions(({context, enqueue}) => {
			// Every stop spawns a process (`crosvm stop`), and spawning blocks the event loop until the
			// child has exec'd: STOP goes out in batches, one batch per macrotask, so a large fleet
			// does not freeze the host's event loop for the whole shutdown. All stops still overlap.
			const timeoutMs = context.shutdownStopTimeoutMs ?? context.vmDefaults.stopTimeoutMs;
			const batch = context.stopQueue.slice(0, STOP_BATCH_SIZE);
			for (const id of batch) {
				const held = context.vms.get(id);
				if (held !== undefined) {
					// Launching or running: the VM machine stops it (a launch finishes first, then stops).
					enqueue.sendTo(held.ref, {type: 'STOP', timeoutMs, initiator: 'supervisor'});
				}
			}

			const rest = context.stopQueue.slice(batch.length);
			enqueue.assign({stopQueue: rest});
			if (rest.length > 0) {
				enqueue.raise({type: 'STOP.NEXT_BATCH'}, {delay: 'stopBatchPause'});
			}
		}),
		emitShutdownCompleted: emit({type: 'supervisor.shutdown.completed', cause: 'shutdown()', initiator: 'caller'}),
	},
}).createMachine({
	id: 'supervisor',
	context: ({input}) => ({
		pool: withSummary(createCidPool(input.cidRange, {lastAllocated: input.lastAllocatedCid, held: input.staleVms.map(record => record.cid)})),
		stateDir: input.stateDir,
		vmDefaults: input.vmDefaults,
		vms: new Map(),
		recorded: new Set(),
		staleVms: input.staleVms,
		shutdownStopTimeoutMs: undefined,
		stopQueue: [],
	}),
	on: {
		'xstate.done.actor.vm.*': {
			guard: 'isHeldVm',
			actions: [
				{type: 'forgetVmRecord', params: ({event}) => ({actorId: event.actorId})},
				{type: 'releaseVm', params: ({event}) => ({actorId: event.actorId, cause: 'vm cleaned up' as const})},
			],
		},
		'xstate.error.actor.vm.*': {
			guard: 'isHeldVm',
			actions: [
				'logVmActorFailure',
				{type: 'forgetVmRecord', params: ({event}) => ({actorId: event.actorId})},
				{type: 'releaseVm', params: ({event}) => ({actorId: event.actorId, cause: 'vm actor failed' as const})},
			],
		},
		'xstate.snapshot.vm.*': {
			guard: 'vmRunningUnrecorded',
			actions: [
				{type: 'recordRunningVm', params: ({event}) => ({snapshot: event.snapshot})},
				{type: 'markVmRecorded', params: ({event}) => ({snapshot: event.snapshot})},
			],
		},
		// Accepting answers these first; in every other state (Draining, ShutDown) they are refused.
		'VM.CREATE': {actions: 'refuseShutDown'},
		'VM.START': {actions: 'refuseShutDown'},
	},
	initial: 'Serving',
	states: {
		Serving: {
			type: 'parallel',
			states: {
				reaper: {
					initial: 'Reaping',
					states: {
						Reaping: {
							always: {guard: 'nothingToReap', target: 'Reaped'},
							invoke: {
								id: 'reaper',
								src: 'reapStaleVms',
								input: ({context}) => ({stateDir: context.stateDir ?? '', entries: context.staleVms}),
								onDone: {target: 'Reaped', actions: {type: 'releaseStaleCids', params: ({event}) => event.output}},
								onError: {target: 'Reaped', actions: {type: 'logReapFailure', params: ({event}) => ({error: event.error})}},
							},
						},
						Reaped: {type: 'final'},
					},
				},
				fleet: {
					initial: 'Accepting',
					states: {
						Accepting: {
							on: {
								'VM.CREATE': [
									{guard: 'hasFreeCid', actions: ['allocateAndSpawnVm', 'reportVmCreated', 'persistLastCid']},
									{actions: 'refuseNoCid'},
								],
								'VM.START': {actions: 'acceptStart'},
								SHUTDOWN: {target: 'Draining', actions: 'recordShutdownTimeout'},
							},
						},
						Draining: {
							entry: ['emitShutdownStarted', 'discardUnstartedVms', 'stopNextBatch'],
							on: {
								'STOP.NEXT_BATCH': {actions: 'stopNextBatch'},
							},
							always: {guard: 'fleetIsEmpty', target: 'Drained'},
						},
						Drained: {type: 'final'},
					},
				},
			},
			onDone: 'ShutDown',
		},
		// Not final: the actor stays alive after shutdown so that it can answer every later request
		// with a refusal, rather than the façade deciding for it.
		ShutDown: {
			entry: 'emitShutdownCompleted',
		},
	},
});

/** Lets the inspector and logs show the pool as its summary rather than its bitmap. */
function withSummary(pool: CidPool): CidPool {
	Object.defineProperty(pool, 'toJSON', {value: () => describeCidPool(pool), enumerable: false});
	return pool;
}
