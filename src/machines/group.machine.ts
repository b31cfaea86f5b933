import {assertEvent, assign, emit, enqueueActions, sendParent, setup, type ActorRefFrom} from 'xstate';
import {backoffDelayMs} from '../services/restart/backoff.js';
import {RestartEnvironment} from '../services/restart/environment.js';
import {membersToRestart, type GroupMember} from '../services/restart/group-members.js';
import {admitRestart, type RestartWindow} from '../services/restart/intensity.js';
import type {GroupPolicy, GroupStrategy, RestartPolicy} from '../services/restart/policy.js';
import {judgeDeath} from '../services/restart/verdict.js';
import type {RestartCause, RestartOutcome} from './restart.machine.js';
import type {VmDeath} from '../types.js';

export interface GroupMachineInput {
	id: string;
	policy: GroupPolicy;
	env?: RestartEnvironment;
}

export interface GroupContext {
	id: string;
	policy: GroupPolicy;
	env: RestartEnvironment;
	/** In the order they were created: the order a restart starts them in. */
	members: GroupMember[];
	/** The members the restart under way stops and starts again. */
	restartSet: number[];
	/** The member whose failure started the restart under way, and why it failed. */
	failed: {cid: number; cause: RestartCause} | undefined;
	attempt: number;
	restarts: number;
	window: RestartWindow;
	delayMs: number;
}

/** What the supervisor tells a group about its members. */
export type GroupMachineEvent =
	| {type: 'MEMBER.ADD'; cid: number; policy: RestartPolicy}
	/** The supervisor started the member (the caller's start, or a restart the group asked for). */
	| {type: 'MEMBER.STARTED'; cid: number}
	/** A life of the member ended: its death, or none when it failed to start. */
	| {type: 'MEMBER.DIED'; cid: number; death: VmDeath | undefined}
	/** A stop or kill was asked of the member through its handle. */
	| {type: 'MEMBER.END'; cid: number}
	/** The supervisor shuts down: no restart follows. */
	| {type: 'END'};

/** What a group asks of the supervisor. */
export type GroupRequest =
	| {type: 'GROUP.STOP'; group: string; cids: number[]}
	| {type: 'GROUP.RESTART'; group: string; cids: number[]}
	| {type: 'GROUP.RELEASE'; group: string; cid: number}
	| {type: 'GROUP.GAVE_UP'; group: string; cid: number; reason: RestartCause; restarts: number; maxRestarts: number; windowMs: number};

/** What a group reports; the supervisor publishes it in `events$`. */
export type GroupEmitted =
	| {type: 'supervisor.group.restartScheduled'; group: string; strategy: GroupStrategy; cid: number; reason: RestartCause; attempt: number; delayMs: number; members: number[]; initiator: 'supervisor'}
	| {type: 'supervisor.group.restarted'; group: string; members: number[]; restarts: number; initiator: 'supervisor'}
	| {type: 'supervisor.group.memberLeft'; group: string; cid: number; outcome: RestartOutcome; death: VmDeath | undefined; initiator: 'supervisor'};

type MemberDied = Extract<GroupMachineEvent, {type: 'MEMBER.DIED'}>;

function causeOf(event: MemberDied): RestartCause {
	return event.death?.reason ?? 'START_FAILED';
}

function memberOf(context: GroupContext, cid: number): GroupMember | undefined {
	return context.members.find(member => member.cid === cid);
}

/** Whether a member's death ends it: asked for, not a failure under its policy, or a first start that failed. */
function isFinalDeath(context: GroupContext, event: MemberDied): boolean {
	const member = memberOf(context, event.cid);
	if (member === undefined || member.ending) {
		return true;
	}

	return event.death === undefined ? !member.restarted : judgeDeath(member.policy, event.death) === 'final';
}

const onMemberDied = [
	{guard: 'memberDeathIsFinal', actions: [{type: 'releaseDeadMember', params: {outcome: 'ended'}}]},
	{guard: 'withinIntensity', target: '#group.Active.Stopping', actions: ['markDown', 'planRestart', 'stopRestartSet']},
	{target: '#group.GivingUp', actions: ['markDown', 'reportGaveUp']},
] as const;

/**
 * A supervision group: VMs that depend on each other, restarted together by OTP's strategies. A
 * member's own policy says whether its death is a failure; the group says which members restart
 * (one-for-one, one-for-all, rest-for-one), after its own backoff, within its own intensity. Past
 * that intensity it stops every member and reports to the supervisor (`GROUP.GAVE_UP`). Members go
 * back to the supervisor (`GROUP.RELEASE`) once they are dead for good.
 */
export const groupMachine = setup({
	types: {
		context: {} as GroupContext,
		events: {} as GroupMachineEvent,
		input: {} as GroupMachineInput,
		emitted: {} as GroupEmitted,
	},
	delays: {
		backoff: ({context}) => context.delayMs,
		healthy: ({context}) => context.policy.resetAfterMs,
	},
	guards: {
		memberDeathIsFinal({context, event}) {
			assertEvent(event, 'MEMBER.DIED');
			return isFinalDeath(context, event);
		},
		withinIntensity: ({context}) => admitRestart(context.window, context.env.now(), context.policy.intensity).allowed,
		memberLive({context, event}) {
			assertEvent(event, ['MEMBER.END', 'MEMBER.DIED']);
			return memberOf(context, event.cid)?.live === true;
		},
		inRestartSet({context, event}) {
			assertEvent(event, 'MEMBER.DIED');
			return context.restartSet.includes(event.cid);
		},
		restartSetDown: ({context}) => context.restartSet.every(cid => memberOf(context, cid)?.live !== true),
		restartSetUp: ({context}) => context.restartSet.every(cid => memberOf(context, cid)?.live !== false),
		noMembers: ({context}) => context.members.length === 0,
		restartSetEmpty: ({context}) => context.restartSet.length === 0,
	},
	actions: {
		addMember: assign(({context, event}) => {
			assertEvent(event, 'MEMBER.ADD');
			return {members: [...context.members, {cid: event.cid, policy: event.policy, live: false, ending: false, restarted: false, lastDeath: undefined}]};
		}),
		markLive: assign(({context, event}) => {
			assertEvent(event, 'MEMBER.STARTED');
			return {members: context.members.map(member => (member.cid === event.cid ? {...member, live: true} : member))};
		}),
		markDown: assign(({context, event}) => {
			assertEvent(event, 'MEMBER.DIED');
			return {members: context.members.map(member => (member.cid === event.cid ? {...member, live: false, lastDeath: event.death ?? member.lastDeath} : member))};
		}),
		markEnding: assign(({context, event}) => {
			assertEvent(event, 'MEMBER.END');
			return {
				members: context.members.map(member => (member.cid === event.cid ? {...member, ending: true} : member)),
				restartSet: context.restartSet.filter(cid => cid !== event.cid),
			};
		}),
		// The member is dead for good: it leaves the group, and its CID goes back to the supervisor.
		releaseDeadMember: enqueueActions(({context, event, enqueue}, params: {outcome: RestartOutcome}) => {
			assertEvent(event, ['MEMBER.DIED', 'MEMBER.END']);
			const member = memberOf(context, event.cid);
			if (member === undefined) {
				return;
			}

			const death = event.type === 'MEMBER.DIED' ? event.death ?? member.lastDeath : member.lastDeath;
			enqueue.assign({members: context.members.filter(each => each.cid !== event.cid), restartSet: context.restartSet.filter(cid => cid !== event.cid)});
			enqueue.emit({type: 'supervisor.group.memberLeft', group: context.id, cid: event.cid, outcome: params.outcome, death, initiator: 'supervisor'});
			enqueue(sendParent({type: 'GROUP.RELEASE', group: context.id, cid: event.cid} satisfies GroupRequest));
		}),
		// Every member that is not running leaves; those that run leave when their death comes.
		releaseIdleMembers: enqueueActions(({context, enqueue}, params: {outcome: RestartOutcome}) => {
			for (const member of context.members.filter(each => !each.live)) {
				enqueue.emit({type: 'supervisor.group.memberLeft', group: context.id, cid: member.cid, outcome: params.outcome, death: member.lastDeath, initiator: 'supervisor'});
				enqueue(sendParent({type: 'GROUP.RELEASE', group: context.id, cid: member.cid} satisfies GroupRequest));
			}

			enqueue.assign({members: context.members.filter(each => each.live), restartSet: []});
		}),
		// Only called after withinIntensity: the restart is admitted into the window here.
		planRestart: assign(({context, event}) => {
			assertEvent(event, 'MEMBER.DIED');
			const {window} = admitRestart(context.window, context.env.now(), context.policy.intensity);
			const member = memberOf(context, event.cid);
			const reboot = event.death !== undefined && member !== undefined && judgeDeath(member.policy, event.death) === 'reboot';
			// Members of a restart still starting (not yet reported started) stay in the new one.
			const restartSet = new Set([...membersToRestart(context.members, event.cid, context.policy.strategy), ...context.restartSet.filter(cid => memberOf(context, cid)?.live === false)]);
			return {
				window,
				restartSet: context.members.map(each => each.cid).filter(cid => restartSet.has(cid)),
				failed: {cid: event.cid, cause: causeOf(event)},
				delayMs: reboot ? 0 : backoffDelayMs(context.policy.backoff, context.attempt, context.env.random()),
				attempt: reboot ? context.attempt : context.attempt + 1,
			};
		}),
		// A member that fails while a restart is under way joins it.
		joinRestart: assign(({context, event}) => {
			assertEvent(event, 'MEMBER.DIED');
			return {
				restartSet: context.members.map(member => member.cid).filter(cid => cid === event.cid || context.restartSet.includes(cid)),
				members: context.members.map(member => (member.cid === event.cid ? {...member, live: false, lastDeath: event.death ?? member.lastDeath} : member)),
			};
		}),
		stopRestartSet: enqueueActions(({context, enqueue}) => {
			const live = context.restartSet.filter(cid => memberOf(context, cid)?.live === true);
			if (live.length > 0) {
				enqueue(sendParent({type: 'GROUP.STOP', group: context.id, cids: live} satisfies GroupRequest));
			}
		}),
		emitScheduled: emit(({context}) => ({
			type: 'supervisor.group.restartScheduled' as const,
			group: context.id,
			strategy: context.policy.strategy,
			cid: context.failed?.cid ?? 0,
			reason: context.failed?.cause ?? 'START_FAILED',
			attempt: context.restarts + 1,
			delayMs: context.delayMs,
			members: context.restartSet,
			initiator: 'supervisor' as const,
		})),
		requestRestart: enqueueActions(({context, enqueue}) => {
			const set = new Set(context.restartSet);
			enqueue.assign({restarts: context.restarts + 1, members: context.members.map(member => (set.has(member.cid) ? {...member, restarted: true} : member))});
			enqueue(sendParent({type: 'GROUP.RESTART', group: context.id, cids: context.restartSet} satisfies GroupRequest));
		}),
		emitRestarted: emit(({context}) => ({type: 'supervisor.group.restarted' as const, group: context.id, members: context.restartSet, restarts: context.restarts, initiator: 'supervisor' as const})),
		resetBackoff: assign({attempt: 0}),
		reportGaveUp: enqueueActions(({context, event, enqueue}) => {
			assertEvent(event, 'MEMBER.DIED');
			const {maxRestarts, windowMs} = context.policy.intensity;
			enqueue(sendParent({type: 'GROUP.GAVE_UP', group: context.id, cid: event.cid, reason: causeOf(event), restarts: context.restarts, maxRestarts, windowMs} satisfies GroupRequest));
		}),
		stopLiveMembers: enqueueActions(({context, enqueue}) => {
			const live = context.members.filter(member => member.live).map(member => member.cid);
			if (live.length > 0) {
				enqueue(sendParent({type: 'GROUP.STOP', group: context.id, cids: live} satisfies GroupRequest));
			}
		}),
	},
}).createMachine({
	id: 'group',
	context: ({input}) => ({
		id: input.id,
		policy: input.policy,
		env: input.env ?? new RestartEnvironment(),
		members: [],
		restartSet: [],
		failed: undefined,
		attempt: 0,
		restarts: 0,
		window: [],
		delayMs: 0,
	}),
	initial: 'Active',
	states: {
		Active: {
			on: {
				'MEMBER.ADD': {actions: 'addMember'},
				'MEMBER.STARTED': {actions: 'markLive'},
				END: '#group.Ending',
			},
			initial: 'Running',
			states: {
				Running: {
					initial: 'Proving',
					states: {
						Proving: {after: {healthy: {target: 'Healthy', actions: 'resetBackoff'}}},
						Healthy: {},
					},
					on: {
						'MEMBER.DIED': [...onMemberDied],
						'MEMBER.END': [
							{guard: 'memberLive', actions: 'markEnding'},
							// Never started: a stop does nothing to it, as to a VM outside a group.
						],
					},
				},
				// The rest of the restart set is being stopped by the supervisor.
				Stopping: {
					always: {guard: 'restartSetDown', target: 'Backoff'},
					on: {
						'MEMBER.DIED': [
							// First: the supervisor's stop of a member to restart is no final death.
							{guard: 'inRestartSet', actions: 'markDown'},
							{guard: 'memberDeathIsFinal', actions: [{type: 'releaseDeadMember', params: {outcome: 'ended'}}]},
							{actions: 'joinRestart'},
						],
						'MEMBER.END': [
							{guard: 'memberLive', actions: 'markEnding'},
							{actions: {type: 'releaseDeadMember', params: {outcome: 'cancelled'}}},
						],
					},
				},
				Backoff: {
					entry: 'emitScheduled',
					// Every member to restart was stopped through its handle meanwhile: nothing to restart.
					always: {guard: 'restartSetEmpty', target: 'Running'},
					after: {backoff: {target: 'Restarting', actions: 'requestRestart'}},
					on: {
						'MEMBER.DIED': [
							{guard: 'memberDeathIsFinal', actions: [{type: 'releaseDeadMember', params: {outcome: 'ended'}}]},
							{actions: 'joinRestart'},
						],
						'MEMBER.END': [
							{guard: 'memberLive', actions: 'markEnding'},
							{actions: {type: 'releaseDeadMember', params: {outcome: 'cancelled'}}},
						],
					},
				},
				// The supervisor starts the set in order and reports each (it ignores the request once shutting down).
				Restarting: {
					always: {guard: 'restartSetUp', target: 'Running', actions: 'emitRestarted'},
					on: {
						'MEMBER.DIED': [...onMemberDied],
						'MEMBER.END': [
							{guard: 'memberLive', actions: 'markEnding'},
							{actions: {type: 'releaseDeadMember', params: {outcome: 'cancelled'}}},
						],
					},
				},
			},
		},
		// The supervisor shuts down: members that do not run leave now, the others when they die.
		Ending: {
			entry: {type: 'releaseIdleMembers', params: {outcome: 'cancelled'}},
			always: {guard: 'noMembers', target: 'Done'},
			on: {
				'MEMBER.DIED': {actions: {type: 'releaseDeadMember', params: {outcome: 'ended'}}},
			},
		},
		// Past its intensity: every member is stopped and leaves; the supervisor was told.
		GivingUp: {
			entry: ['stopLiveMembers', {type: 'releaseIdleMembers', params: {outcome: 'gave-up'}}],
			always: {guard: 'noMembers', target: 'Done'},
			on: {
				'MEMBER.DIED': {actions: {type: 'releaseDeadMember', params: {outcome: 'gave-up'}}},
			},
		},
		Done: {type: 'final'},
	},
});

export type GroupActorRef = ActorRefFrom<typeof groupMachine>;
