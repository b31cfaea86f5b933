import {assign, emit, type AnyStateMachine, enqueueActions, fromPromise, setup, stopChild, type ActorRefFrom, type DoneActorEvent, type ErrorActorEvent, type SnapshotFrom} from 'xstate';
import {NoAvailableCidError, SupervisorShutDownError} from '../errors.js';
import {allocateCid, createCidPool, describeCidPool, hasFreeCid, releaseCid, type CidPool} from '../services/cids/allocator.js';
import {writeLastCid} from '../services/cids/store.js';
import {processIdentity} from '../services/state-dir/process-identity.js';
import {reapStaleVms, removeVmRecord, writeVmRecord, type ReapedVm, type VmRecord} from '../services/state-dir/stale-vms.js';
import type {VmConfig} from '../services/config/vm-config.js';
import {vmMachine, type VmMachineInput} from './vm.machine.js';
import {type CidRange} from '../services/cids/range.js';
import {type Requester} from '../types.js';

/** The VM actors the supervisor spawns. */
export type VmActorRef = ActorRefFrom<typeof vmMachine>;

/** What every VM of this supervisor shares; each `createVm` adds its config, requester and channel. */
export type VmDefaults = Omit<VmMachineInput, 'config' | 'cid' | 'requester' | 'payloadChannel'>;

export interface SupervisorMachineInput {
	cidRange: CidRange;
	/** The last CID the previous instance allocated, read from the state directory. */
	lastAllocatedCid: number | undefined;
	/** The previous instance's VMs: their CIDs stay held until they are reaped. */
	staleVms: VmRecord[];
	stateDir: string | undefined;
	vmDefaults: VmDefaults;
}

/** A request to create a VM. `ticket.abandoned` lets a caller withdraw a request that was queued. */
export interface CreateVmRequest {
	requestId: number;
	config: VmConfig;
	requester: Requester;
	payloadChannel: boolean;
	ticket: {abandoned: boolean};
}

/** The answer to the latest `VM.CREATE`, read by `createVm` right after sending it. */
export type CreateVmOutcome =
	| {requestId: number; cid: number; error?: undefined}
	| {requestId: number; cid?: undefined; error: Error};

export interface SupervisorContext {
	/** Updated in place: see `CidPool`. Shown to the inspector as a summary. */
	pool: CidPool;
	stateDir: string | undefined;
	vmDefaults: VmDefaults;
	/** The VM actors by CID, from allocation until their CID is released. Updated in place. */
	vms: Map<number, VmActorRef>;
	/** CIDs whose running VMM is recorded in the state directory. */
	recorded: Set<number>;
	staleVms: VmRecord[];
	lastCreation: CreateVmOutcome | undefined;
	/** The stop timeout `shutdown()` asked for, if any. */
	shutdownStopTimeoutMs: number | undefined;
	/** During shutdown: the CIDs of the VMs not yet sent STOP. */
	stopQueue: number[];
}

export type SupervisorMachineEvent =
	| ({type: 'VM.CREATE'} & CreateVmRequest)
	| {type: 'SHUTDOWN'; stopTimeoutMs?: number}
	| {type: 'STOP.NEXT_BATCH'}
	| DoneActorEvent<unknown, string>
	| ErrorActorEvent<unknown, string>
	| {type: `xstate.snapshot.${string}`; snapshot: SnapshotFrom<typeof vmMachine>};

/** What the supervisor itself reports; `createSupervisor` merges it with its VMs' events. */
export type SupervisorMachineEmitted =
	| {type: 'supervisor.cid.allocated'; cid: number; cause: 'createVm'; initiator: 'caller'}
	| {type: 'supervisor.cid.released'; cid: number; cause: 'vm cleaned up' | 'vm actor failed' | 'vm never started' | 'stale vm reaped'; initiator: 'supervisor'}
	| ({type: 'supervisor.staleVm.reaped'; cause: string; initiator: 'supervisor'} & ReapedVm)
	| {type: 'supervisor.shutdown.started'; cause: 'shutdown()'; initiator: 'caller'; vms: number}
	| {type: 'supervisor.shutdown.completed'; cause: 'shutdown()'; initiator: 'caller'};

// Registered as a plain state machine: the declaration of `supervisorMachine` cannot spell out the
// VM machine's internal actor types. Inputs are checked with `satisfies`, refs typed as VmActorRef.
const vmLogic: AnyStateMachine = vmMachine;

const VM_ID_PREFIX = 'vm-';

/** How many VMs are sent STOP per macrotask during shutdown. */
export const STOP_BATCH_SIZE = 8;

/** The child id of the VM actor with `cid`. */
export function vmActorId(cid: number): string {
	return `${VM_ID_PREFIX}${cid}`;
}

function cidOfActorId(actorId: string | undefined): number | undefined {
	return actorId?.startsWith(VM_ID_PREFIX) ? Number(actorId.slice(VM_ID_PREFIX.length)) : undefined;
}

/** The VMM's pid and temporary directory, once the VM snapshot says it runs. */
function runningVmmOf(snapshot: SnapshotFrom<typeof vmMachine>): {pid: number; tempDir: string} | undefined {
	const {pid, tempDir} = snapshot.context as {pid?: number; tempDir?: string};
	return snapshot.matches('Running') && pid !== undefined && tempDir !== undefined ? {pid, tempDir} : undefined;
}

const STALE_OUTCOME_CAUSES: Record<ReapedVm['outcome'], string> = {
	killed: 'a previous supervisor left it running: killed',
	gone: 'a previous supervisor left its record: no longer running',
	'pid-reused': 'a previous supervisor left its record: its PID now names another process, left alone',
	'kill-timed-out': 'a previous supervisor left it running: sent SIGKILL, still running after the wait',
};

/**
 * One supervisor per host: owns every VM actor (spawned as its children, so one actor system),
 * allocates their vsock CIDs, reaps what a previous instance left running, and stops the fleet.
 */
export const supervisorMachine = setup({
	types: {
		context: {} as SupervisorContext,
		events: {} as SupervisorMachineEvent,
		input: {} as SupervisorMachineInput,
		emitted: {} as SupervisorMachineEmitted,
	},
	actors: {
		vm: vmLogic,
		reapStaleVms: fromPromise<ReapedVm[], {stateDir: string; records: VmRecord[]}>(async ({input}) => reapStaleVms(input.stateDir, input.records)),
	},
	delays: {
		// Zero: the next batch goes out on the next macrotask, after pending I/O callbacks.
		stopBatchPause: 0,
	},
	guards: {
		hasFreeCid: ({context}) => hasFreeCid(context.pool),
		isAbandonedRequest: ({event}) => event.type === 'VM.CREATE' && event.ticket.abandoned,
		isVmActor: ({event}) => cidOfActorId((event as DoneActorEvent).actorId) !== undefined,
		vmRunningUnrecorded({context, event}) {
			if (!('snapshot' in event) || context.stateDir === undefined) {
				return false;
			}

			const cid = cidOfActorId(event.type.slice('xstate.snapshot.'.length));
			return cid !== undefined && !context.recorded.has(cid) && runningVmmOf(event.snapshot) !== undefined;
		},
		fleetIsEmpty: ({context}) => context.vms.size === 0,
		nothingToReap: ({context}) => context.stateDir === undefined || context.staleVms.length === 0,
	},
	actions: {
		allocateCid: assign(({context, event}) => {
			const {requestId} = event as CreateVmRequest;
			return {lastCreation: {requestId, cid: allocateCid(context.pool)}};
		}),
		persistLastCid({context}) {
			if (context.stateDir !== undefined && context.pool.lastAllocated !== undefined) {
				writeLastCid(context.stateDir, context.pool.lastAllocated);
			}
		},
		spawnVm: assign(({context, event, spawn}) => {
			const {config, requester, payloadChannel} = event as CreateVmRequest;
			const cid = context.lastCreation!.cid!;
			const actor = spawn('vm', {
				id: vmActorId(cid),
				syncSnapshot: true,
				input: {...context.vmDefaults, config, cid, requester, payloadChannel} satisfies VmMachineInput,
			}) as VmActorRef;
			context.vms.set(cid, actor);
			return {vms: context.vms};
		}),
		emitCidAllocated: emit(({context}) => ({type: 'supervisor.cid.allocated' as const, cid: context.lastCreation!.cid!, cause: 'createVm' as const, initiator: 'caller' as const})),
		refuseNoCid: assign(({context, event}) => ({
			lastCreation: {requestId: (event as CreateVmRequest).requestId, error: new NoAvailableCidError(context.pool.range)},
		})),
		refuseShuttingDown: assign(({event}) => ({
			lastCreation: {requestId: (event as CreateVmRequest).requestId, error: new SupervisorShutDownError()},
		})),
		recordRunningVm({context, event}) {
			const cid = cidOfActorId(event.type.slice('xstate.snapshot.'.length))!;
			const vmm = runningVmmOf((event as {snapshot: SnapshotFrom<typeof vmMachine>}).snapshot)!;
			const identity = processIdentity(vmm.pid);
			if (identity === undefined) {
				// Already gone: its death is on its way, and there is nothing a successor could kill.
				return;
			}

			try {
				writeVmRecord(context.stateDir!, {cid, pid: vmm.pid, startTime: identity.startTime, tempDir: vmm.tempDir, supervisorPid: process.pid});
			} catch (error) {
				context.vmDefaults.logger.error(`Could not record VM ${cid} in ${context.stateDir!}: ${String(error)}`);
			}
		},
		markVmRecorded: assign(({context, event}) => ({
			recorded: new Set(context.recorded).add(cidOfActorId(event.type.slice('xstate.snapshot.'.length))!),
		})),
		forgetVmRecord({context, event}) {
			const cid = cidOfActorId((event as DoneActorEvent).actorId)!;
			if (context.stateDir !== undefined && context.recorded.has(cid)) {
				removeVmRecord(context.stateDir, cid);
			}
		},
		logVmActorFailure({context, event}) {
			if (event.type.startsWith('xstate.error.actor.')) {
				context.vmDefaults.logger.error(`VM actor ${(event as ErrorActorEvent).actorId ?? ''} failed: ${String((event as ErrorActorEvent).error)}`);
			}
		},
		releaseVm: enqueueActions(({context, event, enqueue}) => {
			const actorId = (event as DoneActorEvent).actorId;
			const cid = cidOfActorId(actorId)!;
			const recorded = new Set(context.recorded);
			recorded.delete(cid);
			context.vms.delete(cid);
			releaseCid(context.pool, cid);
			enqueue(stopChild(actorId));
			enqueue.assign({vms: context.vms, recorded});
			enqueue.emit({type: 'supervisor.cid.released', cid, cause: event.type.startsWith('xstate.error.actor.') ? 'vm actor failed' : 'vm cleaned up', initiator: 'supervisor'});
		}),
		releaseStaleCids: enqueueActions(({context, event, enqueue}) => {
			const reaped = (event as DoneActorEvent<ReapedVm[]>).output;
			for (const vm of reaped) {
				releaseCid(context.pool, vm.cid);
				enqueue.emit({type: 'supervisor.staleVm.reaped', ...vm, cause: STALE_OUTCOME_CAUSES[vm.outcome], initiator: 'supervisor'});
				enqueue.emit({type: 'supervisor.cid.released', cid: vm.cid, cause: 'stale vm reaped', initiator: 'supervisor'});
			}

			enqueue.assign({staleVms: []});
		}),
		logReapFailure({context, event}) {
			context.vmDefaults.logger.error(`Reaping the previous supervisor's VMs failed: ${String((event as ErrorActorEvent).error)}`);
		},
		recordShutdownTimeout: assign(({event}) => ({
			shutdownStopTimeoutMs: event.type === 'SHUTDOWN' ? event.stopTimeoutMs : undefined,
		})),
		emitShutdownStarted: emit(({context}) => ({type: 'supervisor.shutdown.started' as const, cause: 'shutdown()' as const, initiator: 'caller' as const, vms: context.vms.size})),
		discardUnstartedVms: enqueueActions(({context, enqueue}) => {
			for (const [cid, actor] of context.vms) {
				if (actor.getSnapshot().matches({NotStarted: 'idle'})) {
					// Never started: nothing runs and nothing was created, so there is nothing to stop.
					context.vms.delete(cid);
					releaseCid(context.pool, cid);
					enqueue(stopChild(actor));
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
			for (const cid of batch) {
				const actor = context.vms.get(cid);
				if (actor !== undefined) {
					// Launching or running: the VM machine stops it (a launch finishes first, then stops).
					enqueue.sendTo(actor, {type: 'STOP', timeoutMs, initiator: 'supervisor'});
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
		lastCreation: undefined,
		shutdownStopTimeoutMs: undefined,
		stopQueue: [],
	}),
	on: {
		'xstate.done.actor.*': {guard: 'isVmActor', actions: ['forgetVmRecord', 'releaseVm']},
		'xstate.error.actor.*': {guard: 'isVmActor', actions: ['logVmActorFailure', 'forgetVmRecord', 'releaseVm']},
		'xstate.snapshot.*': {guard: 'vmRunningUnrecorded', actions: ['recordRunningVm', 'markVmRecorded']},
	},
	initial: 'Serving',
	states: {
		Serving: {
			type: 'parallel',
			on: {
				// Accepting takes VM.CREATE first; in every other state the request is refused.
				'VM.CREATE': {actions: 'refuseShuttingDown'},
			},
			states: {
				reaper: {
					initial: 'Reaping',
					states: {
						Reaping: {
							always: {guard: 'nothingToReap', target: 'Reaped'},
							invoke: {
								id: 'reaper',
								src: 'reapStaleVms',
								input: ({context}) => ({stateDir: context.stateDir!, records: context.staleVms}),
								onDone: {target: 'Reaped', actions: 'releaseStaleCids'},
								onError: {target: 'Reaped', actions: 'logReapFailure'},
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
									{guard: 'isAbandonedRequest'},
									{guard: 'hasFreeCid', actions: ['allocateCid', 'persistLastCid', 'spawnVm', 'emitCidAllocated']},
									{actions: 'refuseNoCid'},
								],
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
		ShutDown: {
			type: 'final',
			entry: 'emitShutdownCompleted',
		},
	},
});

/** Lets the inspector and logs show the pool as its summary rather than its bitmap. */
function withSummary(pool: CidPool): CidPool {
	Object.defineProperty(pool, 'toJSON', {value: () => describeCidPool(pool), enumerable: false});
	return pool;
}
