import {assertEvent, assign, createActor, emit, enqueueActions, fromPromise, setup, stopChild, type ActorRefFrom, type AnyStateMachine, type AnyActorRef, type DoneActorEvent, type ErrorActorEvent, type SnapshotFrom} from 'xstate';
import {NoAvailableCidError, SupervisionGroupClosedError, SupervisorShutDownError} from '../errors.js';
import {allocateCid, createCidPool, describeCidPool, hasFreeCid, releaseCid, type CidPool} from '../services/cids/allocator.js';
import {writeLastCid} from '../services/cids/store.js';
import {processIdentity} from '../services/state-dir/process-identity.js';
import {removeVmRecord, writeVmRecord, type StaleVmEntry} from '../services/state-dir/records.js';
import {reapStateDir, type StaleVmReport} from '../services/state-dir/reap.js';
import type {StateDirWrite} from '../services/state-dir/files.js';
import type {VmConfig} from '../services/config/vm-config.js';
import {vmMachine, type VmMachineInput, type VmOutput} from './vm.machine.js';
import {restartMachine, type RestartActorRef, type RestartDue, type RestartMachineInput, type RestartOutput} from './restart.machine.js';
import {RestartEnvironment} from '../services/restart/environment.js';
import {mayRestart, type GroupPolicy, type RestartPolicy} from '../services/restart/policy.js';
import {groupMachine, type GroupActorRef, type GroupMachineInput, type GroupRequest} from './group.machine.js';
import {fleetGuard} from '../services/fleet/fleet-guard.js';
import type {CidRange} from '../services/cids/range.js';
import type {Requester} from '../types.js';

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
	/** The clock and randomness of every restart machine (tests inject a simulated clock). */
	restartEnvironment?: RestartEnvironment;
}

/** A request to create a VM; the machine answers it with a `SupervisorReply` of the same `requestId`. */
export interface CreateVmRequest {
	requestId: number;
	config: VmConfig;
	requester: Requester;
	payloadChannel: boolean;
	/** Default: never restarted. */
	restartPolicy?: RestartPolicy;
	/** The supervision group the VM joins: its restarts are then the group's. */
	group?: string;
}

/**
 * A VM the supervisor holds: its CID stays allocated until its life is over and no restart follows.
 * `ref` is the current life (none during a restart's backoff); `restart` is its restart machine,
 * when its policy may restart it.
 */
export interface HeldVm {
	cid: number;
	ref: VmActorRef | undefined;
	restart: RestartActorRef | undefined;
	/** The id of its supervision group, if it has one (then `restart` is undefined). */
	group: string | undefined;
	/** What each life is spawned from. */
	input: VmMachineInput;
}

export interface SupervisorContext {
	/** Updated in place: see `CidPool`. Shown to the inspector as a summary. */
	pool: CidPool;
	stateDir: string | undefined;
	vmDefaults: VmDefaults;
	/** The VMs by actor id (`vm.<cid>`), from allocation until their CID is released. Updated in place. */
	vms: Map<string, HeldVm>;
	/** CIDs whose running VMM is recorded in the state directory. Updated in place, as `vms`: a copy per VM would cost a fleet time in proportion to its size. */
	recorded: Set<number>;
	staleVms: StaleVmEntry[];
	/** The stop timeout `shutdown()` asked for, if any. */
	shutdownStopTimeoutMs: number | undefined;
	/** During shutdown: the actor ids of the VMs not yet sent STOP, the next one last (taken from the end, in place). */
	stopQueue: string[];
	/**
	 * The actor ids of the VMs created and not yet asked to start (`VM.START`), updated in place: what
	 * a shutdown checks for VMs to discard, rather than every VM of the fleet in one step.
	 */
	unstarted: Set<string>;
	restartEnvironment: RestartEnvironment;
	/** The supervision groups by id (`group.<n>`), until they are done. */
	groups: Map<string, GroupActorRef>;
	/** How many groups were created: names the next. */
	groupsCreated: number;
}

/** The id of the VM actor with `cid`. Dotted, so that `xstate.done.actor.vm.*` names the VMs and nothing else. */
export function vmActorId(cid: number): VmActorId {
	return `vm.${cid}`;
}

export type VmActorId = `vm.${number}`;

/** The id of the restart machine of the VM with `cid`. */
export function restartActorId(cid: number): RestartActorId {
	return `restart.${cid}`;
}

export type RestartActorId = `restart.${number}`;

export type GroupActorId = `group.${number}`;

/** The id of the VM a restart machine watches. */
function vmIdOfRestart(actorId: string): string {
	return `vm.${actorId.slice('restart.'.length)}`;
}

export type SupervisorMachineEvent =
	| ({type: 'VM.CREATE'} & CreateVmRequest)
	/** The façade asks whether a VM may start; it starts it when the answer is `supervisor.vm.startAccepted`. */
	| {type: 'VM.START'; requestId: number; cid: number}
	| {type: 'GROUP.CREATE'; requestId: number; policy: GroupPolicy}
	| GroupRequest
	| DoneActorEvent<unknown, GroupActorId>
	| ErrorActorEvent<unknown, GroupActorId>
	| {type: 'SHUTDOWN'; stopTimeoutMs?: number}
	| {type: 'STOP.NEXT_BATCH'}
	/** A stop or kill was asked of the VM with `cid` through its handle: no restart may follow. */
	| {type: 'VM.END'; cid: number}
	| RestartDue
	| DoneActorEvent<RestartOutput, RestartActorId>
	| ErrorActorEvent<unknown, RestartActorId>
	| DoneActorEvent<VmOutput, VmActorId>
	| ErrorActorEvent<unknown, VmActorId>
	/** A VM's VMM runs (sent by the VM actor's observer when there is a state directory to record it in). */
	| ({type: 'VM.RUNNING'; cid: number} & RunningVmm);

/** What went wrong writing the state directory: the supervisor goes on, the successor may know less. */
export type StateWrite = 'last-cid' | 'vm-record' | 'vm-record-removal';

/** What the supervisor itself reports; `createSupervisor` merges it with its VMs' events. */
export type SupervisorMachineEmitted =
	| {type: 'supervisor.cid.allocated'; cid: number; cause: 'createVm'; initiator: 'caller'}
	| {type: 'supervisor.cid.released'; cid: number; cause: 'vm cleaned up' | 'vm actor failed' | 'vm never started' | 'stale vm reaped' | 'restart machine failed'; initiator: 'supervisor'}
	| ({type: 'supervisor.staleVm.reaped'; cause: string; initiator: 'supervisor'} & StaleVmReport)
	| {type: 'supervisor.state.writeFailed'; write: StateWrite; cid: number; stateDir: string; cause: string; initiator: 'supervisor'}
	| {type: 'supervisor.shutdown.started'; cause: 'shutdown()'; initiator: 'caller'; vms: number}
	| {type: 'supervisor.shutdown.completed'; cause: 'shutdown()'; initiator: 'caller'}
	/** A supervision group exceeded its intensity: it stops all its VMs, and takes no more. */
	| {type: 'supervisor.group.gaveUp'; group: string; cid: number; reason: string; restarts: number; maxRestarts: number; windowMs: number; initiator: 'supervisor'};

/** A new life of a restarting VM, for the façade to follow (not published). */
export interface SupervisorLifeSpawned {
	type: 'supervisor.vm.respawned';
	cid: number;
	vm: VmActorRef;
}

/** The machine's answers to `VM.CREATE` and `VM.START`, for the façade that asked (not published). */
export type SupervisorReply =
	| {type: 'supervisor.vm.created'; requestId: number; cid: number; vm: VmActorRef; restart: RestartActorRef | undefined}
	| {type: 'supervisor.vm.startAccepted'; requestId: number}
	| {type: 'supervisor.group.created'; requestId: number; id: string; group: GroupActorRef}
	| {type: 'supervisor.vm.refused'; requestId: number; error: NoAvailableCidError | SupervisorShutDownError | SupervisionGroupClosedError};

// A plain state machine here: the declaration of `supervisorMachine` cannot spell out the VM
// machine's internal actor types (vm.machine.ts does not export them), so the ref is typed as
// VmActorRef where it is created, and its input checked with `satisfies`.
const vmLogic: AnyStateMachine = vmMachine;

/**
 * A VM actor of this supervisor, and its restart machine, are *detached children*: created with the
 * supervisor as their parent (XState's `parent` option, as a spawn does), so they are in its actor
 * system (inspector, clock) and their done, error and snapshot events come here as a spawned
 * child's do, and `stopChild(ref)` stops them; but they are not in the supervisor snapshot's
 * `children`. XState copies that object on every spawn and every stop of a child: with the fleet in
 * it, each VM created or ended cost about 1 ms at 1,000 VMs and 3 ms at 10,000
 * (docs/performance.md). They are started with the transition that made them; the `fleetGuard` ends them if the supervisor actor itself is stopped.
 */
function createVmActor(parent: SupervisorSelf, id: VmActorId, input: VmMachineInput): VmActorRef {
	return createActor(registeredLogic(parent, 'vm'), {id, parent, input});
}

/** The restart machine of a detached VM actor: a detached child too. */
function createRestartActor(parent: SupervisorSelf, input: RestartMachineInput): RestartActorRef {
	return createActor(registeredLogic(parent, 'restart') as typeof restartMachine, {id: restartActorId(input.cid), parent, input});
}

/** What the supervisor's actions know of the supervisor actor. */
interface SupervisorSelf extends AnyActorRef {
	send(event: SupervisorMachineEvent): void;
	getSnapshot(): {machine: AnyStateMachine};
}

/** The logic registered in `setup` under `name`, or what `provide` replaced it with (tests give a fake VM). */
function registeredLogic(self: SupervisorSelf, name: 'vm' | 'restart'): AnyStateMachine {
	const logic = self.getSnapshot().machine.implementations.actors[name];
	if (logic === undefined || !('transition' in logic)) {
		throw new Error(`the supervisor machine has no ${name} actor logic`);
	}

	return logic as AnyStateMachine;
}

/**
 * Starts a detached VM actor. With a state directory, its observer tells the supervisor once the
 * VMM runs (`VM.RUNNING`), to record it; the supervisor follows no other change of the VM (a
 * spawned child's `syncSnapshot` would have cost it a transition per change of every VM).
 */
function startVmActor(self: SupervisorSelf, ref: VmActorRef, recorded: boolean): void {
	if (recorded) {
		const subscription = ref.subscribe({
			next(snapshot) {
				const vmm = runningVmmOf(snapshot);
				if (vmm !== undefined) {
					subscription.unsubscribe();
					self.send({type: 'VM.RUNNING', cid: snapshot.context.cid, ...vmm});
				}
			},
			// The supervisor hears of a failed VM actor through its error event. Without a handler here,
			// XState would rethrow the error from a timer: an uncaught exception in the host.
			error() {
				// Nothing: see above.
			},
		});
	}

	ref.start();
}

/** How many VMs are sent STOP per macrotask during shutdown. */
export const STOP_BATCH_SIZE = 4;

/** What the state directory records of a running VMM. */
interface RunningVmm {
	pid: number;
	tempDir: string;
}

/** The VMM's pid and temporary directory, once the VM snapshot says it runs. */
function runningVmmOf(snapshot: VmSnapshot): RunningVmm | undefined {
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
		emitted: {} as SupervisorMachineEmitted | SupervisorReply | SupervisorLifeSpawned,
	},
	actors: {
		vm: vmLogic,
		restart: restartMachine,
		group: groupMachine,
		fleetGuard,
		reapStaleVms: fromPromise<StaleVmReport[], {stateDir: string; entries: StaleVmEntry[]}>(async ({input}) => reapStateDir(input.stateDir, input.entries)),
	},
	delays: {
		// Zero: the next batch goes out on the next macrotask, after pending I/O callbacks.
		stopBatchPause: 0,
	},
	guards: {
		hasFreeCid: ({context}) => hasFreeCid(context.pool),
		groupClosed({context, event}) {
			assertEvent(event, 'VM.CREATE');
			if (event.group === undefined) {
				return false;
			}

			const group = context.groups.get(event.group);
			return group === undefined || !group.getSnapshot().matches('Active');
		},
		releasesOwnMember({context, event}) {
			assertEvent(event, 'GROUP.RELEASE');
			return context.vms.get(vmActorId(event.cid))?.group === event.group;
		},
		isGroupMember({context, event}) {
			assertEvent(event, 'xstate.done.actor.vm.*');
			return context.vms.get(event.actorId)?.group !== undefined;
		},
		isHeldVm({context, event}) {
			assertEvent(event, ['xstate.done.actor.vm.*', 'xstate.error.actor.vm.*']);
			return context.vms.has(event.actorId);
		},
		hasNoLife({context, event}) {
			assertEvent(event, ['xstate.done.actor.restart.*', 'xstate.error.actor.restart.*']);
			return context.vms.get(vmIdOfRestart(event.actorId))?.ref === undefined;
		},
		isRestartWatched({context, event}) {
			assertEvent(event, 'xstate.done.actor.vm.*');
			return context.vms.get(event.actorId)?.restart !== undefined;
		},
		vmUnrecorded({context, event}) {
			assertEvent(event, 'VM.RUNNING');
			return context.stateDir !== undefined && !context.recorded.has(event.cid) && context.vms.get(vmActorId(event.cid))?.ref !== undefined;
		},
		fleetIsEmpty: ({context}) => context.vms.size === 0,
		nothingToReap: ({context}) => context.stateDir === undefined || context.staleVms.length === 0,
	},
	actions: {
		// Detached children (see createVmActor), started once the transition is taken.
		allocateAndCreateVm: enqueueActions(({context, event, self, enqueue}) => {
			assertEvent(event, 'VM.CREATE');
			const {config, requester, payloadChannel, restartPolicy, group} = event;
			const cid = allocateCid(context.pool);
			const id = vmActorId(cid);
			const input = {...context.vmDefaults, config, cid, requester, payloadChannel} satisfies VmMachineInput;
			const ref = createVmActor(self, id, input);
			// In a group, the group restarts it; alone, a policy that can never restart needs no watching.
			const restart = group !== undefined || restartPolicy === undefined || !mayRestart(restartPolicy) ? undefined : createRestartActor(self, {cid, policy: restartPolicy, vm: ref, healthFrom: payloadChannel ? 'ready' : 'start', env: context.restartEnvironment});
			context.vms.set(id, {cid, ref, restart, group, input});
			context.unstarted.add(id);
			enqueue.assign({vms: context.vms, unstarted: context.unstarted});
			// Carried out with the transition, as a spawn's start is.
			enqueue(() => {
				startVmActor(self, ref, context.stateDir !== undefined);
				restart?.start();
			});
		}),
		joinGroup: enqueueActions(({context, event, enqueue}) => {
			assertEvent(event, 'VM.CREATE');
			const {lastAllocated: cid} = context.pool;
			const group = event.group === undefined ? undefined : context.groups.get(event.group);
			if (group !== undefined && cid !== undefined && event.restartPolicy !== undefined) {
				enqueue.sendTo(group, {type: 'MEMBER.ADD', cid, policy: event.restartPolicy});
			}
		}),
		refuseGroupClosed: emit(({event}) => {
			assertEvent(event, 'VM.CREATE');
			return {type: 'supervisor.vm.refused' as const, requestId: event.requestId, error: new SupervisionGroupClosedError(event.group ?? '')};
		}),
		createGroup: enqueueActions(({context, event, enqueue}) => {
			assertEvent(event, 'GROUP.CREATE');
			const id = `group.${context.groupsCreated + 1}`;
			enqueue.assign(({spawn}) => {
				const group = spawn('group', {id, input: {id, policy: event.policy, env: context.restartEnvironment} satisfies GroupMachineInput});
				context.groups.set(id, group);
				return {groups: context.groups, groupsCreated: context.groupsCreated + 1};
			});
			enqueue(emit(({context: current}) => ({type: 'supervisor.group.created' as const, requestId: event.requestId, id, group: current.groups.get(id)!})));
		}),
		// A life of a group member ended: the group decides; the CID stays held until it releases it.
		reportMemberDied: enqueueActions(({context, event, enqueue}) => {
			assertEvent(event, 'xstate.done.actor.vm.*');
			const held = context.vms.get(event.actorId);
			// A group is done only once it has no member left, so a member's group is there.
			const group = held?.group === undefined ? undefined : context.groups.get(held.group);
			if (held !== undefined && group !== undefined) {
				enqueue.sendTo(group, {type: 'MEMBER.DIED', cid: held.cid, death: event.output.death});
			}
		}),
		// The life is over but the VM is not: its CID stays held, and its next life is recorded anew.
		dropLife: enqueueActions(({context, event, enqueue}) => {
			assertEvent(event, 'xstate.done.actor.vm.*');
			const held = context.vms.get(event.actorId);
			if (held?.ref === undefined) {
				return;
			}

			enqueue(stopChild(held.ref));
			context.recorded.delete(held.cid);
			context.vms.set(event.actorId, {...held, ref: undefined});
			enqueue.assign({vms: context.vms, recorded: context.recorded});
		}),
		// A member's VM actor failed (a bug): it leaves its group for good, with no death.
		reportMemberFailed: enqueueActions(({context, event, enqueue}) => {
			assertEvent(event, 'xstate.error.actor.vm.*');
			const held = context.vms.get(event.actorId);
			const group = held?.group === undefined ? undefined : context.groups.get(held.group);
			if (held !== undefined && group !== undefined) {
				enqueue.sendTo(group, {type: 'MEMBER.END', cid: held.cid});
				enqueue.sendTo(group, {type: 'MEMBER.DIED', cid: held.cid, death: undefined});
			}
		}),
		noteMemberStarted: enqueueActions(({context, event, enqueue}) => {
			assertEvent(event, 'VM.START');
			const groupId = context.vms.get(vmActorId(event.cid))?.group;
			const group = groupId === undefined ? undefined : context.groups.get(groupId);
			if (group !== undefined) {
				enqueue.sendTo(group, {type: 'MEMBER.STARTED', cid: event.cid});
			}
		}),
		stopMembers: enqueueActions(({context, event, enqueue}) => {
			assertEvent(event, 'GROUP.STOP');
			const timeoutMs = context.shutdownStopTimeoutMs ?? context.vmDefaults.stopTimeoutMs;
			for (const cid of event.cids) {
				const ref = context.vms.get(vmActorId(cid))?.ref;
				if (ref?.getSnapshot().status === 'active') {
					enqueue.sendTo(ref, {type: 'STOP', timeoutMs, initiator: 'supervisor'});
				}
			}
		}),
		emitGroupGaveUp: emit(({event}) => {
			assertEvent(event, 'GROUP.GAVE_UP');
			const {group, cid, reason, restarts, maxRestarts, windowMs} = event;
			return {type: 'supervisor.group.gaveUp' as const, group, cid, reason, restarts, maxRestarts, windowMs, initiator: 'supervisor' as const};
		}),
		dropGroup: enqueueActions(({context, event, enqueue}) => {
			assertEvent(event, ['xstate.done.actor.group.*', 'xstate.error.actor.group.*']);
			const group = context.groups.get(event.actorId);
			if (group !== undefined) {
				context.groups.delete(event.actorId);
				enqueue(stopChild(group));
				enqueue.assign({groups: context.groups});
			}
		}),
		// A life of a restarting VM ended: its restart machine judges the death, and the CID stays held.
		reportLifeEnded: enqueueActions(({context, event, enqueue}) => {
			assertEvent(event, 'xstate.done.actor.vm.*');
			const held = context.vms.get(event.actorId);
			if (held?.restart === undefined) {
				return;
			}

			const {death, error} = event.output;
			enqueue.sendTo(held.restart, death === undefined ? {type: 'LIFE.START_FAILED', message: error?.message ?? 'the VM did not start'} : {type: 'LIFE.DIED', death});
		}),
		// The next lives of VMs whose restart is due (alone or in a group), with the same CIDs:
		// detached children (see createVmActor), started once the transition is taken.
		spawnLives: enqueueActions(({context, self, enqueue}, params: {cids: number[]}) => {
			for (const cid of params.cids) {
				const id = vmActorId(cid);
				const held = context.vms.get(id);
				if (held !== undefined && held.ref === undefined) {
					const ref = createVmActor(self, id, held.input);
					context.vms.set(id, {...held, ref});
					enqueue(() => {
						startVmActor(self, ref, context.stateDir !== undefined);
					});
				}
			}

			enqueue.assign({vms: context.vms});
		}),
		// Started in the order given: a group's order.
		startLives: enqueueActions(({context, enqueue}, params: {cids: number[]}) => {
			for (const cid of params.cids) {
				const held = context.vms.get(vmActorId(cid));
				const group = held?.group === undefined ? undefined : context.groups.get(held.group);
				if (held?.ref === undefined) {
					continue;
				}

				if (held.ref.getSnapshot().matches({NotStarted: 'idle'})) {
					enqueue.sendTo(held.ref, {type: 'START', initiator: 'supervisor'});
					enqueue.emit({type: 'supervisor.vm.respawned', cid, vm: held.ref});
					if (held.restart !== undefined) {
						enqueue.sendTo(held.restart, {type: 'LIFE.SPAWNED', vm: held.ref});
					}
				}

				// Also for a life already under way (asked twice): the group waits for every member it restarts.
				if (group !== undefined) {
					enqueue.sendTo(group, {type: 'MEMBER.STARTED', cid});
				}
			}
		}),
		endRestart: enqueueActions(({context, event, enqueue}) => {
			assertEvent(event, 'VM.END');
			const held = context.vms.get(vmActorId(event.cid));
			const group = held?.group === undefined ? undefined : context.groups.get(held.group);
			if (held?.restart !== undefined) {
				enqueue.sendTo(held.restart, {type: 'END', initiator: 'caller'});
			}

			if (group !== undefined) {
				enqueue.sendTo(group, {type: 'MEMBER.END', cid: event.cid});
			}
		}),
		endAllRestarts: enqueueActions(({context, enqueue}) => {
			for (const {restart} of context.vms.values()) {
				if (restart !== undefined) {
					enqueue.sendTo(restart, {type: 'END', initiator: 'supervisor'});
				}
			}

			for (const group of context.groups.values()) {
				enqueue.sendTo(group, {type: 'END'});
			}
		}),
		logGroupFailure: ({context, event}) => {
			assertEvent(event, 'xstate.error.actor.group.*');
			context.vmDefaults.logger.error(`Supervision group ${event.actorId} failed: ${String(event.error)}`);
		},
		// No restart follows: the restart machine goes; the CID goes back once no life runs either.
		dropRestart: assign(({context}, params: {actorId: string}) => {
			const id = vmIdOfRestart(params.actorId);
			const held = context.vms.get(id);
			if (held?.restart !== undefined) {
				context.vms.set(id, {...held, restart: undefined});
			}

			return {vms: context.vms};
		}),
		stopRestartActor: enqueueActions(({context, enqueue}, params: {actorId: string}) => {
			const restart = context.vms.get(vmIdOfRestart(params.actorId))?.restart;
			if (restart !== undefined) {
				enqueue(stopChild(restart));
			}
		}),
		// The restart was cancelled while its life was still launching: that life is stopped.
		stopLaunchingLife: enqueueActions(({context, enqueue}, params: {actorId: string}) => {
			const ref = context.vms.get(vmIdOfRestart(params.actorId))?.ref;
			if (ref?.getSnapshot().status === 'active') {
				enqueue.sendTo(ref, {type: 'STOP', timeoutMs: context.shutdownStopTimeoutMs ?? context.vmDefaults.stopTimeoutMs, initiator: 'supervisor'});
			}
		}),
		logRestartFailure: ({context, event}) => {
			assertEvent(event, 'xstate.error.actor.restart.*');
			context.vmDefaults.logger.error(`Restart machine ${event.actorId} failed: ${String(event.error)}`);
		},
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
		// After allocateAndCreateVm: the pool's last allocated CID is the new VM's.
		reportVmCreated: enqueueActions(({context, event, enqueue}) => {
			assertEvent(event, 'VM.CREATE');
			const {lastAllocated: cid} = context.pool;
			const held = cid === undefined ? undefined : context.vms.get(vmActorId(cid));
			if (held?.ref !== undefined) {
				enqueue.emit({type: 'supervisor.cid.allocated', cid: held.cid, cause: 'createVm', initiator: 'caller'});
				enqueue.emit({type: 'supervisor.vm.created', requestId: event.requestId, cid: held.cid, vm: held.ref, restart: held.restart});
			}
		}),
		refuseNoCid: emit(({context, event}) => {
			assertEvent(event, 'VM.CREATE');
			return {type: 'supervisor.vm.refused' as const, requestId: event.requestId, error: new NoAvailableCidError(context.pool.range)};
		}),
		refuseShutDown: emit(({event}) => {
			assertEvent(event, ['VM.CREATE', 'VM.START', 'GROUP.CREATE']);
			return {type: 'supervisor.vm.refused' as const, requestId: event.requestId, error: new SupervisorShutDownError()};
		}),
		acceptStart: emit(({event}) => {
			assertEvent(event, 'VM.START');
			return {type: 'supervisor.vm.startAccepted' as const, requestId: event.requestId};
		}),
		noteStarted: assign(({context, event}) => {
			assertEvent(event, 'VM.START');
			context.unstarted.delete(vmActorId(event.cid));
			return {unstarted: context.unstarted};
		}),
		recordRunningVm: enqueueActions(({context, event, enqueue}) => {
			assertEvent(event, 'VM.RUNNING');
			const {stateDir} = context;
			const {cid, pid, tempDir} = event;
			const identity = processIdentity(pid);
			if (stateDir === undefined || identity === undefined) {
				// Already gone: its death is on its way, and there is nothing a successor could kill.
				return;
			}

			const record = {cid, pid, startTime: identity.startTime, tempDir, supervisorPid: process.pid};
			const failure = failedWrite(writeVmRecord(stateDir, record), 'vm-record', cid, stateDir);
			if (failure !== undefined) {
				context.vmDefaults.logger.error(`Could not record VM ${cid}: ${failure.cause}`);
				enqueue.emit(failure);
			}
		}),
		markVmRecorded: assign(({context, event}) => {
			assertEvent(event, 'VM.RUNNING');
			return {recorded: context.recorded.add(event.cid)};
		}),
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
		releaseVm: enqueueActions(({context, enqueue}, params: {actorId: string; cause: 'vm cleaned up' | 'vm actor failed' | 'restart machine failed'}) => {
			const held = context.vms.get(params.actorId);
			if (held === undefined) {
				return;
			}

			context.recorded.delete(held.cid);
			context.vms.delete(params.actorId);
			context.unstarted.delete(params.actorId);
			releaseCid(context.pool, held.cid);
			for (const child of [held.ref, held.restart]) {
				if (child !== undefined) {
					enqueue(stopChild(child));
				}
			}

			enqueue.assign({vms: context.vms, recorded: context.recorded});
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
			// Only the VMs never asked to start: a fleet's shutdown does not look at every VM in one step.
			for (const id of context.unstarted) {
				const {cid, ref, restart} = context.vms.get(id) ?? {};
				if (cid !== undefined && ref?.getSnapshot().matches({NotStarted: 'idle'}) === true && restart?.getSnapshot().matches('Idle') !== false) {
					// Never started: nothing runs and nothing was created, so there is nothing to stop.
					// Its handle's start() now asks a Draining supervisor, which refuses it.
					context.vms.delete(id);
					context.unstarted.delete(id);
					releaseCid(context.pool, cid);
					enqueue(stopChild(ref));
					if (restart !== undefined) {
						enqueue(stopChild(restart));
					}

					enqueue.emit({type: 'supervisor.cid.released', cid, cause: 'vm never started', initiator: 'supervisor'});
				}
			}

			enqueue.assign({vms: context.vms, unstarted: context.unstarted, stopQueue: [...context.vms.keys()].reverse()});
		}),
		stopNextBatch: enqueueActions(({context, enqueue}) => {
			// Every STOP costs its VM's transitions and a stop command: STOP goes out in batches, one
			// batch per macrotask, so a large fleet does not hold the host's event loop for the whole
			// shutdown. All stops still overlap.
			const timeoutMs = context.shutdownStopTimeoutMs ?? context.vmDefaults.stopTimeoutMs;
			const batch = context.stopQueue.splice(-STOP_BATCH_SIZE).reverse();
			for (const id of batch) {
				const ref = context.vms.get(id)?.ref;
				if (ref !== undefined) {
					// Launching or running: the VM machine stops it (a launch finishes first, then stops).
					// A VM waiting for a restart has no life to stop: endAllRestarts cancelled it.
					enqueue.sendTo(ref, {type: 'STOP', timeoutMs, initiator: 'supervisor'});
				}
			}

			enqueue.assign({stopQueue: context.stopQueue});
			if (context.stopQueue.length > 0) {
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
		unstarted: new Set(),
		restartEnvironment: input.restartEnvironment ?? new RestartEnvironment(),
		groups: new Map(),
		groupsCreated: 0,
	}),
	on: {
		'xstate.done.actor.vm.*': [
			{
				guard: 'isGroupMember',
				actions: [
					{type: 'forgetVmRecord', params: ({event}) => ({actorId: event.actorId})},
					'reportMemberDied',
					'dropLife',
				],
			},
			{
				guard: 'isRestartWatched',
				actions: [
					{type: 'forgetVmRecord', params: ({event}) => ({actorId: event.actorId})},
					'reportLifeEnded',
					'dropLife',
				],
			},
			{
				guard: 'isHeldVm',
				actions: [
					{type: 'forgetVmRecord', params: ({event}) => ({actorId: event.actorId})},
					{type: 'releaseVm', params: ({event}) => ({actorId: event.actorId, cause: 'vm cleaned up' as const})},
				],
			},
		],
		'xstate.done.actor.restart.*': [
			{
				guard: 'hasNoLife',
				actions: [
					{type: 'stopRestartActor', params: ({event}) => ({actorId: event.actorId})},
					{type: 'dropRestart', params: ({event}) => ({actorId: event.actorId})},
					{type: 'releaseVm', params: ({event}) => ({actorId: vmIdOfRestart(event.actorId), cause: 'vm cleaned up' as const})},
				],
			},
			{
				actions: [
					{type: 'stopRestartActor', params: ({event}) => ({actorId: event.actorId})},
					{type: 'dropRestart', params: ({event}) => ({actorId: event.actorId})},
					{type: 'stopLaunchingLife', params: ({event}) => ({actorId: event.actorId})},
				],
			},
		],
		'xstate.error.actor.restart.*': [
			{
				guard: 'hasNoLife',
				actions: ['logRestartFailure', {type: 'releaseVm', params: ({event}) => ({actorId: vmIdOfRestart(event.actorId), cause: 'restart machine failed' as const})}],
			},
			{
				actions: [
					'logRestartFailure',
					{type: 'stopRestartActor', params: ({event}) => ({actorId: event.actorId})},
					{type: 'dropRestart', params: ({event}) => ({actorId: event.actorId})},
					{type: 'stopLaunchingLife', params: ({event}) => ({actorId: event.actorId})},
				],
			},
		],
		'VM.END': {actions: 'endRestart'},
		'GROUP.STOP': {actions: 'stopMembers'},
		'GROUP.RELEASE': {
			guard: 'releasesOwnMember',
			actions: {type: 'releaseVm', params: ({event}) => ({actorId: vmActorId(event.cid), cause: 'vm cleaned up' as const})},
		},
		'GROUP.GAVE_UP': {actions: 'emitGroupGaveUp'},
		'xstate.done.actor.group.*': {actions: 'dropGroup'},
		'xstate.error.actor.group.*': {actions: ['logGroupFailure', 'dropGroup']},
		'xstate.error.actor.vm.*': {
			guard: 'isHeldVm',
			actions: [
				'logVmActorFailure',
				'reportMemberFailed',
				{type: 'forgetVmRecord', params: ({event}) => ({actorId: event.actorId})},
				{type: 'releaseVm', params: ({event}) => ({actorId: event.actorId, cause: 'vm actor failed' as const})},
			],
		},
		'VM.RUNNING': {guard: 'vmUnrecorded', actions: ['recordRunningVm', 'markVmRecorded']},
		// Accepting answers these first; in every other state (Draining, ShutDown) they are refused.
		'VM.CREATE': {actions: 'refuseShutDown'},
		'VM.START': {actions: 'refuseShutDown'},
		'GROUP.CREATE': {actions: 'refuseShutDown'},
	},
	// For as long as the actor lives: it ends the detached VM actors if the actor is stopped by hand.
	invoke: {id: 'fleetGuard', src: 'fleetGuard', input: ({context}) => ({vms: context.vms})},
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
									{guard: 'groupClosed', actions: 'refuseGroupClosed'},
									{guard: 'hasFreeCid', actions: ['allocateAndCreateVm', 'joinGroup', 'reportVmCreated', 'persistLastCid']},
									{actions: 'refuseNoCid'},
								],
								'VM.START': {actions: ['noteMemberStarted', 'noteStarted', 'acceptStart']},
								'GROUP.CREATE': {actions: 'createGroup'},
								'GROUP.RESTART': {actions: [{type: 'spawnLives', params: ({event}) => ({cids: event.cids})}, {type: 'startLives', params: ({event}) => ({cids: event.cids})}]},
								// Only while accepting: once shutting down, no restart starts.
								'RESTART.DUE': {actions: [{type: 'spawnLives', params: ({event}) => ({cids: [event.cid]})}, {type: 'startLives', params: ({event}) => ({cids: [event.cid]})}]},
								SHUTDOWN: {target: 'Draining', actions: 'recordShutdownTimeout'},
							},
						},
						Draining: {
							entry: ['emitShutdownStarted', 'discardUnstartedVms', 'endAllRestarts', 'stopNextBatch'],
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
