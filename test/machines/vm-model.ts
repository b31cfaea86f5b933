import {assign, setup} from 'xstate';
import type {DeathReason} from '../../src/services/death/reason.js';
import type {PayloadState} from '../../src/services/payload/state.js';
import type {Initiator} from '../../src/types.js';

/**
 * The abstract model of one VM, as its user sees it: it starts (or fails to), its payload moves
 * forward (skipping is allowed), and it dies exactly once, by one of the guest's exits, the boot
 * hang-up watch, a graceful stop, a stop the guest ignores, or a kill. No invokes or delays:
 * `createTestModel` walks it, and each path is executed against the real `vmMachine` on crosvm-sim.
 */

/** How the guest ends its run (the guest script's final action), and what the death must say. */
export interface GuestExit {
	/** The guest script lines that end the run. */
	directives: string[];
	reason: DeathReason;
	exitCode?: number;
	signal?: NodeJS.Signals;
	failureReason?: string;
	failureContext?: string;
	initiator: Initiator;
}

/** Every exit of crosvm the VM must tell apart (issue 3, "each exit path gives its reason"). */
export const GUEST_EXITS = {
	poweroff: {directives: ['poweroff'], reason: 'SHUTDOWN', exitCode: 0, initiator: 'guest'},
	reboot: {directives: ['reboot'], reason: 'REBOOT', exitCode: 32, initiator: 'guest'},
	crash: {directives: ['crash'], reason: 'CRASH', exitCode: 33, initiator: 'vmm'},
	panic: {directives: ['panic'], reason: 'GUEST_PANIC', exitCode: 34, initiator: 'guest'},
	watchdog: {directives: ['watchdog'], reason: 'WATCHDOG_REBOOT', exitCode: 36, initiator: 'guest'},
	error: {directives: ['exit 1'], reason: 'ERROR', exitCode: 1, initiator: 'vmm'},
	unknownStatus: {directives: ['exit 7'], reason: 'UNKNOWN', exitCode: 7, initiator: 'vmm'},
	signal: {directives: ['signal SIGSEGV'], reason: 'KILLED', signal: 'SIGSEGV', initiator: 'vmm'},
	abort: {directives: ['abort'], reason: 'KILLED', signal: 'SIGABRT', initiator: 'vmm'},
	knownFailureText: {
		directives: ['fail MICRODROID_PAYLOAD_HAS_CHANGED|apk digest differs', 'poweroff'],
		reason: 'MICRODROID_PAYLOAD_HAS_CHANGED',
		exitCode: 0,
		failureReason: 'MICRODROID_PAYLOAD_HAS_CHANGED',
		failureContext: 'apk digest differs',
		initiator: 'guest',
	},
	otherFailureText: {
		directives: ['fail disk full|/dev/vda', 'exit 1'],
		reason: 'ERROR',
		exitCode: 1,
		failureReason: 'disk full',
		failureContext: '/dev/vda',
		initiator: 'vmm',
	},
} as const satisfies Record<string, GuestExit>;

export type GuestExitName = keyof typeof GUEST_EXITS;

/** What the model says a death must look like. */
export interface ExpectedDeath {
	reason: DeathReason;
	payloadState: PayloadState;
	initiator: Initiator;
	exitCode?: number;
	signal?: NodeJS.Signals;
	failureReason?: string;
	failureContext?: string;
	/** How the VM came to die: which model event. */
	cause: 'EXIT' | 'HANGUP' | 'STOP' | 'STOP_RETRIED' | 'STOP_IGNORED' | 'STOP_TIMED_OUT' | 'KILL';
}

export type VmModelEvent =
	| {type: 'START'}
	| {type: 'START_FAILS'}
	| {type: 'REPORT'; state: Exclude<PayloadState, 'Starting'>}
	| {type: 'EXIT'; exit: GuestExitName}
	| {type: 'HANGUP'}
	| {type: 'STOP'}
	/** A stop whose first request fails (the control socket is not answering yet) and is retried. */
	| {type: 'STOP_RETRIED'}
	| {type: 'STOP_IGNORED'}
	/** A stop that was delivered, but the VM did not exit within the timeout. */
	| {type: 'STOP_TIMED_OUT'}
	| {type: 'KILL'};

export interface VmModelContext {
	payload: PayloadState;
	death: ExpectedDeath | undefined;
}

const rank: Record<PayloadState, number> = {Starting: 0, Started: 1, Ready: 2, Finished: 3};

/** The concrete events the traversal tries (`REPORT` and `EXIT` carry a parameter). */
export const VM_MODEL_EVENTS: VmModelEvent[] = [
	{type: 'START'},
	{type: 'START_FAILS'},
	{type: 'REPORT', state: 'Started'},
	{type: 'REPORT', state: 'Ready'},
	{type: 'REPORT', state: 'Finished'},
	...(Object.keys(GUEST_EXITS) as GuestExitName[]).map(exit => ({type: 'EXIT' as const, exit})),
	{type: 'HANGUP'},
	{type: 'STOP'},
	{type: 'STOP_RETRIED'},
	{type: 'STOP_IGNORED'},
	{type: 'STOP_TIMED_OUT'},
	{type: 'KILL'},
];

export const vmModel = setup({
	types: {
		context: {} as VmModelContext,
		events: {} as VmModelEvent,
	},
	guards: {
		movesForward: ({context, event}) => event.type === 'REPORT' && rank[event.state] > rank[context.payload],
		reportsStarted: ({event}) => event.type === 'REPORT' && event.state === 'Started',
		reportsReady: ({event}) => event.type === 'REPORT' && event.state === 'Ready',
		reportsFinished: ({event}) => event.type === 'REPORT' && event.state === 'Finished',
	},
	actions: {
		recordPayload: assign({payload: ({context, event}) => (event.type === 'REPORT' ? event.state : context.payload)}),
		recordExit: assign({
			death: ({context, event}) => {
				if (event.type !== 'EXIT') {
					return context.death;
				}

				const {directives: _directives, ...expected} = GUEST_EXITS[event.exit] as GuestExit;
				return {...expected, payloadState: context.payload, cause: 'EXIT' as const};
			},
		}),
		recordHangup: assign({death: ({context}) => ({reason: 'HANGUP' as const, payloadState: context.payload, initiator: 'guest' as const, signal: 'SIGKILL' as const, cause: 'HANGUP' as const})}),
		recordStop: assign({death: ({context}) => ({reason: 'SHUTDOWN' as const, payloadState: context.payload, initiator: 'caller' as const, exitCode: 0, cause: 'STOP' as const})}),
		recordRetriedStop: assign({death: ({context}) => ({reason: 'SHUTDOWN' as const, payloadState: context.payload, initiator: 'caller' as const, exitCode: 0, cause: 'STOP_RETRIED' as const})}),
		recordIgnoredStop: assign({death: ({context}) => ({reason: 'KILLED' as const, payloadState: context.payload, initiator: 'caller' as const, signal: 'SIGKILL' as const, cause: 'STOP_IGNORED' as const})}),
		recordTimedOutStop: assign({death: ({context}) => ({reason: 'KILLED' as const, payloadState: context.payload, initiator: 'caller' as const, signal: 'SIGKILL' as const, cause: 'STOP_TIMED_OUT' as const})}),
		recordKill: assign({death: ({context}) => ({reason: 'KILLED' as const, payloadState: context.payload, initiator: 'caller' as const, signal: 'SIGKILL' as const, cause: 'KILL' as const})}),
	},
}).createMachine({
	id: 'vmModel',
	initial: 'NotStarted',
	context: {payload: 'Starting', death: undefined},
	states: {
		NotStarted: {
			on: {
				START: 'Running',
				START_FAILS: 'Failed',
			},
		},
		Running: {
			initial: 'Starting',
			on: {
				EXIT: {target: 'Dead', actions: 'recordExit'},
				STOP: {target: 'Dead', actions: 'recordStop'},
				STOP_RETRIED: {target: 'Dead', actions: 'recordRetriedStop'},
				STOP_IGNORED: {target: 'Dead', actions: 'recordIgnoredStop'},
				STOP_TIMED_OUT: {target: 'Dead', actions: 'recordTimedOutStop'},
				KILL: {target: 'Dead', actions: 'recordKill'},
			},
			states: {
				Starting: {
					on: {
						REPORT: [
							{guard: 'reportsStarted', target: 'Started', actions: 'recordPayload'},
							{guard: 'reportsReady', target: 'Ready', actions: 'recordPayload'},
							{guard: 'reportsFinished', target: 'Finished', actions: 'recordPayload'},
						],
						HANGUP: {target: '#vmModel.Dead', actions: 'recordHangup'},
					},
				},
				Started: {
					on: {
						REPORT: [
							{guard: 'reportsReady', target: 'Ready', actions: 'recordPayload'},
							{guard: 'reportsFinished', target: 'Finished', actions: 'recordPayload'},
						],
					},
				},
				Ready: {
					on: {REPORT: {guard: 'reportsFinished', target: 'Finished', actions: 'recordPayload'}},
				},
				Finished: {},
			},
		},
		Dead: {type: 'final'},
		Failed: {type: 'final'},
	},
});

/** A path's events, as the guest script and the VM options that make the real VM take it. */
export interface PathPlan {
	/** Guest script directives (without the `#!crosvm-sim-guest` line). */
	directives: string[];
	/** Whether the VM must be created so that it cannot start. */
	startFails: boolean;
	/** Whether the path waits for the boot hang-up watch. */
	hangup: boolean;
	/** Whether the VMM driver must fail the first stop request. */
	failFirstStopRequest: boolean;
	/** Whether the VMM driver must report stop requests delivered without delivering them. */
	swallowStopRequests: boolean;
}

/**
 * Translates a path into what the guest does: reports become `payload ...` lines, a guest exit its
 * final action; when the path ends with the caller's stop or kill, or with the hang-up watch, the
 * guest hangs; a stop the guest ignores needs `ignore-stop` before anything else.
 */
export function planPath(events: readonly VmModelEvent[]): PathPlan {
	const directives: string[] = [];
	let hangup = false;
	for (const event of events) {
		switch (event.type) {
			case 'REPORT':
				directives.push(event.state === 'Finished' ? 'payload finished 0' : `payload ${event.state.toLowerCase()}`);
				break;
			case 'EXIT':
				directives.push(...GUEST_EXITS[event.exit].directives);
				break;
			case 'HANGUP':
				hangup = true;
				directives.push('hang');
				break;
			case 'STOP_IGNORED':
				directives.unshift('ignore-stop');
				directives.push('hang');
				break;
			case 'STOP':
			case 'STOP_RETRIED':
			case 'STOP_TIMED_OUT':
			case 'KILL':
				directives.push('hang');
				break;
			default:
				break;
		}
	}

	return {
		directives,
		startFails: events.some(event => event.type === 'START_FAILS'),
		hangup,
		failFirstStopRequest: events.some(event => event.type === 'STOP_RETRIED'),
		swallowStopRequests: events.some(event => event.type === 'STOP_TIMED_OUT'),
	};
}
