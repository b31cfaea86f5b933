import {and, assertEvent, assign, emit, enqueueActions, fromCallback, fromPromise, raise, sendTo, setup, stateIn, type DoneActorEvent} from 'xstate';
import type winston from 'winston';
import {InvalidPayloadTransitionError, VmStateError, type VmwardenError} from '../errors.js';
import {decideDeathReason, deathInitiator, splitFailureText} from '../services/death/decide.js';
import {vmLogger} from '../services/logging/logger.js';
import {payloadChannelReader} from '../services/payload/channel.js';
import type {PayloadReport} from '../services/payload/protocol.js';
import type {PayloadState} from '../services/payload/state.js';
import type {VmConfig} from '../services/config/vm-config.js';
import type {VmmDriver, VmmExit} from '../services/vmm/driver.js';
import {VmEnvironment} from '../services/vmm/environment.js';
import {asVmwardenError, launchVmm, type LaunchInput, type Launched} from '../services/vmm/launch.js';
import type {FilePolicy} from '../services/config/file-policy.js';
import {sanitizeForLog} from '../services/logging/sanitize.js';
import {requestStop, type StopRequestInput} from '../services/vmm/request-stop.js';
import {checkTimeoutMs, isTimeoutMs} from '../services/config/timeouts.js';
import {controlErrorOf} from '../services/control/errors.js';
import {resumeVmm, suspendVmm, type ControlInput} from '../services/control/operation.js';
import {watchVmm, type VmmCommand, type VmmDone, type VmmWatchEvent, type WatchInput} from '../services/vmm/watch.js';
import {vmTimer, type VmTimerEvent} from '../services/vmm/timer.js';
import type {VmmEnvironment} from '../services/vmm/vmm-environment.js';
import type {Initiator, Requester, VmDeath, VmEvent} from '../types.js';

export type {VmmWatchEvent} from '../services/vmm/watch.js';

/** What a VM actor is built from (see docs/vm.md). */
export interface VmMachineInput {
	config: VmConfig;
	cid: number;
	driver: VmmDriver;
	/** The VMM binary: a path, or a name looked up on PATH. */
	vmmPath: string;
	/** Where the VM's private temporary directory is created. */
	tempRoot: string;
	logger: winston.Logger;
	/** Whole milliseconds, 0 to 2^31 - 1 (`InvalidConfigError` otherwise). */
	bootHangupTimeoutMs: number;
	/** How long `stop()` waits for the VMM to exit before it kills it (whole milliseconds, 0 to 2^31 - 1). */
	stopTimeoutMs: number;
	/** Who asked for the VM: logged when it starts. */
	requester: Requester;
	/** Whether to give the guest the payload report channel (`/dev/ttyS2`). */
	payloadChannel: boolean;
	/** What the config's files may be (docs/security.md). Default `{}`, the strict policy. */
	filePolicy?: FilePolicy;
	/** The whole environment of the VMM and of its commands (checked: see `checkVmmEnvironment`). */
	vmmEnvironment: VmmEnvironment;
}

/** What a parent receives in `xstate.done.actor.<id>`: the VM's CID, and its death or its start error. */
export interface VmOutput {
	cid: number;
	death: VmDeath | undefined;
	error: VmwardenError | undefined;
}

/** A stop that was asked for: by whom, and how long to wait before killing. */
export interface StopRequest {
	initiator: Initiator;
	timeoutMs: number;
}

/** Refused payload reports in the current window: how many were logged and emitted, how many only counted. */
export interface PayloadRefusals {
	reported: number;
	muted: number;
}

/**
 * A VM's context. Its inputs that never change are in `env` (the requester, whether the payload
 * channel is given and the hang-up watched): XState copies the context on every `assign`, and V8
 * keeps a copy of more than 19 fields as a dictionary, several times the size.
 */
export interface VmContext {
	cid: number;
	bootHangupTimeoutMs: number;
	stopTimeoutMs: number;
	env: VmEnvironment;
	/** Who sent START. */
	starter: Initiator;
	/**
	 * The VMM's pid and temporary directory, for the record (snapshots, the handle, a parent's state
	 * directory): set when it was spawned and kept after its death. The process itself is owned by
	 * the `vmm` actor that Running invokes, and exists nowhere else.
	 */
	pid: number | undefined;
	tempDir: string | undefined;
	/** The VMM's binary as it was found and spawned: what its stop and control commands run. */
	vmmFile: string | undefined;
	payloadState: PayloadState;
	/** Whether the boot hang-up watch fired. */
	hungUp: boolean;
	/** A stop asked for (possibly while launching). */
	stopRequest: StopRequest | undefined;
	/** A kill asked for while launching, applied once running. */
	pendingKill: boolean;
	/** SIGKILL was sent: later kills are no-ops. */
	killSent: boolean;
	/** Who asked for the end (stop or kill), when someone did. */
	endRequestedBy: Initiator | undefined;
	refusals: PayloadRefusals;
	startError: VmwardenError | undefined;
	death: VmDeath | undefined;
	/** Suspend and resume requests sent to the VMM so far: numbers them for `controlFailure`. */
	controlRequests: number;
	/** The last suspend or resume request that failed, by number, and why. */
	controlFailure: ControlFailure | undefined;
}

/** A failed suspend or resume request: which one (`controlRequests` when it was sent) and its error. */
export interface ControlFailure {
	request: number;
	error: VmwardenError;
}

/** Events the VM accepts from outside. */
export type VmCommandEvent =
	/**
	 * `admitted`: the sender already waited for a spawn turn (services/vmm/spawn/pace.ts) right
	 * before, so the launch goes on in it rather than queueing for another.
	 */
	| {type: 'START'; initiator?: Initiator; admitted?: boolean}
	| {type: 'PAYLOAD.REPORT'; state: PayloadState; initiator: Initiator; report?: PayloadReport}
	| {type: 'KILL'; initiator?: Initiator}
	| {type: 'STOP'; timeoutMs?: number; initiator?: Initiator}
	| {type: 'SUSPEND'; initiator?: Initiator}
	| {type: 'RESUME'; initiator?: Initiator};

/** Raised by the execution region on resume, for the hang-up watch, which does not count time spent suspended. */
export interface ExecutionEvent {
	type: 'EXECUTION.RESUMED';
}

/** Raised by the payload region for a report it refused, for the refusals region to report or count. */
export interface PayloadRefusedEvent {
	type: 'PAYLOAD.REFUSED';
	from: PayloadState;
	to: PayloadState;
	initiator: Initiator;
}

/**
 * The launch's done event. Declared so Running's actors can read the spawned VMM from the event that
 * enters Running: that event is the only place the process is handed over.
 */
export type LaunchDoneEvent = DoneActorEvent<Launched, 'launch'>;

export type VmMachineEvent = VmCommandEvent | VmmWatchEvent | PayloadRefusedEvent | LaunchDoneEvent | ExecutionEvent | VmTimerEvent;

/** How much of the failure text one log line carries: the whole text is in the death record. */
const FAILURE_TEXT_LOG_CHARS = 1000;

/** How soon a failed stop request is repeated (within the stop timeout). */
export const STOP_RETRY_INTERVAL_MS = 100;

/** How many refused payload reports are logged and emitted one by one per window; the rest are counted. */
export const PAYLOAD_REFUSALS_PER_WINDOW = 10;

/** After the budget is spent, how long refusals are only counted before a summary and a new budget. */
export const PAYLOAD_REFUSAL_WINDOW_MS = 10_000;

/** The payload region's transitions out of a state: forward to any later state, anything else refused. */
function payloadTransitions(later: PayloadState[]) {
	return [
		...later.map(state => ({guard: {type: 'reportsPayloadState' as const, params: {state}}, target: state, actions: ['emitPayloadMove' as const, 'recordPayloadState' as const]})),
		{actions: 'raisePayloadRefusal' as const},
	];
}

/** The launch's error, typed: the launch rejects with a `VmwardenError`, anything else is a spawn failure. */
function startErrorOf({context, event}: {context: VmContext; event: {error: unknown}}): VmwardenError {
	return asVmwardenError(event.error, context.env.vmmPath);
}

/** The spawned VMM's pid and directory: recorded on the way into Running, so present wherever Running reads them. */
function launchedVmm({pid, tempDir, vmmFile}: VmContext): {pid: number; tempDir: string; vmmFile: string} {
	if (pid === undefined || tempDir === undefined || vmmFile === undefined) {
		throw new VmStateError('the VM has no VMM: it was never launched');
	}

	return {pid, tempDir, vmmFile};
}

/** A failed suspend or resume request: recorded for the caller who asked, and logged. */
const controlFailureActions = [
	{type: 'recordControlFailure', params: ({event}: {event: {error: unknown}}) => ({error: event.error})},
	{type: 'logControlFailure', params: ({event}: {event: {error: unknown}}) => ({error: event.error})},
] as const;

/** What a control request to the running VMM needs. */
function controlInput({context}: {context: VmContext}): ControlInput {
	return {env: context.env, ...launchedVmm(context)};
}

/**
 * One VM, as Android's `VmInstance`: NotStarted -> Running -> Dead | Failed. See docs/vm.md for the
 * regions of Running and the death decision.
 *
 * The running VMM is state-owned data: `launchVmm` hands it over with the done event that enters
 * Running, where the invoked `vmm` actor (`watchVmm`) takes it and holds it until Running is left;
 * kills go to that actor. Context keeps only facts for the record (`pid`, `tempDir`), so nothing
 * outside Running can reach a process that is gone, and stopping the VM actor from outside stops the
 * owner, which kills and releases.
 */
export const vmMachine = setup({
	types: {
		context: {} as VmContext,
		events: {} as VmMachineEvent,
		input: {} as VmMachineInput,
		output: {} as VmOutput,
		emitted: {} as VmEvent,
		children: {} as {launch: 'launchVmm'; vmm: 'watchVmm'; payloadChannel: 'readPayloadChannel'; stopRequest: 'requestStop'; suspendRequest: 'suspendVmm'; resumeRequest: 'resumeVmm'; hangupWatch: 'vmTimer'; stopTimer: 'vmTimer'; stopRetry: 'vmTimer'},
	},
	actors: {
		launchVmm: fromPromise<Launched, LaunchInput>(async ({input, signal}) => launchVmm(input, signal)),
		watchVmm: fromCallback<VmmCommand, WatchInput, VmmWatchEvent>(({input, sendBack, receive}) => watchVmm({input, sendBack, receive})),
		readPayloadChannel: payloadChannelReader,
		requestStop: fromPromise<void, StopRequestInput>(async ({input, signal}) => requestStop(input, signal)),
		suspendVmm: fromPromise<void, ControlInput>(async ({input}) => suspendVmm(input)),
		resumeVmm: fromPromise<void, ControlInput>(async ({input}) => resumeVmm(input)),
		vmTimer,
	},
	delays: {
		payloadRefusalWindow: PAYLOAD_REFUSAL_WINDOW_MS,
	},
	guards: {
		// The process region leaves `running` on VMM.EXIT, which the watcher sends in the same
		// macrotask as the process's exit callback: an exit always wins over a deadline (a timer,
		// another macrotask) that expires in the same instant.
		vmmRunning: stateIn({Running: {process: 'running'}}),
		killNotSent: ({context}) => !context.killSent,
		canKill: and(['vmmRunning', 'killNotSent']),
		detectsHangup: ({context}) => context.env.detectHangup,
		// A suspended guest cannot report: the watch starts over when it is resumed.
		executing: stateIn({Running: {execution: 'running'}}),
		hangupDue: and(['detectsHangup', 'canKill', 'executing']),
		hasStopRequest: ({context}) => context.stopRequest !== undefined,
		hasPendingKill: ({context}) => context.pendingKill && !context.killSent,
		reportsPayloadState: ({event}, params: {state: PayloadState}) => event.type === 'PAYLOAD.REPORT' && event.state === params.state,
		refusalBudgetLeft: ({context}) => context.refusals.reported < PAYLOAD_REFUSALS_PER_WINDOW,
	},
	actions: {
		noteStarter: assign(({event}) => {
			assertEvent(event, 'START');
			return {starter: event.initiator ?? 'caller'};
		}),
		logStart({context}) {
			// The requester comes from the caller: escaped like any text from outside.
			const {uid, sid, debugPid} = context.env.requester;
			context.env.logger.debug(`Starting for uid ${uid}, sid '${sid}', debug pid ${debugPid}`);
		},
		recordLaunch: assign((_, {vmm, tempDir}: Launched) => ({pid: vmm.pid, tempDir, vmmFile: vmm.file})),
		emitStarted: emit(({context}, {vmm, tempDir}: Launched) => ({type: 'started' as const, cid: context.cid, initiator: context.starter, pid: vmm.pid, tempDir})),
		recordStartError: assign((_, error: VmwardenError) => ({startError: error})),
		logFailure({context}, error: VmwardenError) {
			// Debug only: start() rejects with the error and `failed` carries it, so the host has it already.
			context.env.logger.debug(`Failed to start the VM: ${error.message}`);
		},
		reportFailure: emit(({context}, error: VmwardenError) => ({type: 'failed' as const, cid: context.cid, initiator: context.starter, error})),
		emitPayloadMove: emit(({context, event}) => {
			assertEvent(event, 'PAYLOAD.REPORT');
			return {type: 'payload' as const, cid: context.cid, initiator: event.initiator, from: context.payloadState, to: event.state};
		}),
		recordPayloadState: assign({
			payloadState: ({event}) => {
				assertEvent(event, 'PAYLOAD.REPORT');
				return event.state;
			},
		}),
		raisePayloadRefusal: raise(({context, event}) => {
			assertEvent(event, 'PAYLOAD.REPORT');
			return {type: 'PAYLOAD.REFUSED' as const, from: context.payloadState, to: event.state, initiator: event.initiator};
		}),
		countReportedRefusal: assign({refusals: ({context}) => ({...context.refusals, reported: context.refusals.reported + 1})}),
		countMutedRefusal: assign({refusals: ({context}) => ({...context.refusals, muted: context.refusals.muted + 1})}),
		resetRefusals: assign({refusals: {reported: 0, muted: 0}}),
		logPayloadRefusal({context, event}) {
			assertEvent(event, 'PAYLOAD.REFUSED');
			context.env.logger.warn(`${event.initiator} report refused: ${new InvalidPayloadTransitionError(event.from, event.to).message}`);
		},
		emitPayloadRefused: emit(({context, event}) => {
			assertEvent(event, 'PAYLOAD.REFUSED');
			const {from, to, initiator} = event;
			return {type: 'payload-refused' as const, cid: context.cid, initiator, from, to, message: new InvalidPayloadTransitionError(from, to).message};
		}),
		logMutedRefusals({context}) {
			const {muted} = context.refusals;
			if (muted > 0) {
				context.env.logger.warn(`${muted} more payload reports refused (${PAYLOAD_REFUSALS_PER_WINDOW} per ${PAYLOAD_REFUSAL_WINDOW_MS} ms are logged one by one)`);
			}
		},
		markHungUp: assign({hungUp: true}),
		emitHangup: emit(({context}) => ({type: 'hangup' as const, cid: context.cid, initiator: 'guest' as const, timeoutMs: context.bootHangupTimeoutMs})),
		logHangup({context}) {
			context.env.logger.error(`Payload failed to start within ${context.bootHangupTimeoutMs} ms. Shutting down`);
		},
		noteEndRequester: assign({
			endRequestedBy: ({context, event}) => {
				assertEvent(event, ['KILL', 'STOP']);
				return context.endRequestedBy ?? event.initiator ?? 'caller';
			},
		}),
		notePendingKill: assign({pendingKill: true}),
		noteStopRequest: assign({
			stopRequest: ({context, event}) => {
				assertEvent(event, 'STOP');
				// The handle refuses a bad timeout; a raw STOP with one (NaN, negative, 2^31 and more,
				// which timers fire after 1 ms) gets the VM's stop timeout rather than an instant kill.
				return context.stopRequest ?? {initiator: event.initiator ?? 'caller', timeoutMs: isTimeoutMs(event.timeoutMs) ? event.timeoutMs : context.stopTimeoutMs};
			},
		}),
		killVmm: sendTo('vmm', {type: 'KILL'}),
		markKillSent: assign({killSent: true}),
		emitKilling: emit(({context}) => ({type: 'killing' as const, cid: context.cid, initiator: context.endRequestedBy ?? 'guest', pid: launchedVmm(context).pid})),
		emitStopping: emit(({context}) => ({
			type: 'stopping' as const,
			cid: context.cid,
			initiator: context.stopRequest?.initiator ?? 'caller',
			timeoutMs: context.stopRequest?.timeoutMs ?? context.stopTimeoutMs,
		})),
		logStopRequestFailed({context}, {error}: {error: unknown}) {
			context.env.logger.debug(`Stop request failed, retrying until the stop timeout: ${String(error)}`);
		},
		logExit({context}, exit: VmmExit) {
			const status = exit.signal === undefined ? `exit status ${exit.exitCode ?? 'unknown'}` : `signal ${exit.signal}`;
			context.env.logger.info(`${context.env.driver.name}(${context.pid}) exited with ${status}`);
		},
		logDeathFacts({context}, done: VmmDone) {
			const {logger, driver} = context.env;
			if (done.waitError !== undefined) {
				logger.error(`Error waiting for ${driver.name}(${context.pid}) to die: ${done.waitError}`);
			}

			if (done.failureText.length > 0) {
				logger.info(`VM returned failure reason '${sanitizeForLog(done.failureText, FAILURE_TEXT_LOG_CHARS)}'${done.failureTruncated ? ' (truncated)' : ''}`);
			}
		},
		countControlRequest: assign({controlRequests: ({context}) => context.controlRequests + 1}),
		recordControlFailure: assign(({context}, {error}: {error: unknown}) => ({controlFailure: {request: context.controlRequests, error: controlErrorOf(error)}})),
		logControlFailure({context}, {error}: {error: unknown}) {
			context.env.logger.warn(`Control request failed: ${controlErrorOf(error).message}`);
		},
		raiseResumed: raise({type: 'EXECUTION.RESUMED' as const}),
		logSuspended({context}) {
			context.env.logger.info('VM suspended');
		},
		logResumed({context}) {
			context.env.logger.info('VM resumed');
		},
		recordDeath: assign(({context}, done: VmmDone) => {
			const reason = decideDeathReason({waitError: done.waitError, failureText: done.failureText, hungUp: context.hungUp, exitReason: done.exitReason});
			return {
				death: {
					cid: context.cid,
					reason,
					exitCode: done.exit.exitCode,
					signal: done.exit.signal,
					...splitFailureText(done.failureText),
					payloadState: context.payloadState,
					stderrTail: done.stderrTail,
					initiator: deathInitiator(reason, context.endRequestedBy),
					...(done.consoleTail === undefined ? {} : {consoleTail: done.consoleTail}),
				},
			};
		}),
		// Dead is entered only through recordDeath, so the death is there.
		logDeath({context}) {
			context.env.logger.info(`VM died: ${context.death?.reason ?? 'unknown'}`);
		},
		reportDeath: enqueueActions(({context, enqueue}) => {
			const {death} = context;
			if (death !== undefined) {
				enqueue.emit({type: 'died', cid: context.cid, initiator: death.initiator, death});
			}
		}),
	},
}).createMachine({
	id: 'vm',
	context: ({input}) => ({
		cid: input.cid,
		bootHangupTimeoutMs: checkTimeoutMs('bootHangupTimeoutMs', input.bootHangupTimeoutMs),
		stopTimeoutMs: checkTimeoutMs('stopTimeoutMs', input.stopTimeoutMs),
		env: new VmEnvironment({
			config: input.config,
			driver: input.driver,
			vmmPath: input.vmmPath,
			tempRoot: input.tempRoot,
			logger: vmLogger(input.logger, input.cid),
			filePolicy: input.filePolicy ?? {},
			requester: input.requester,
			payloadChannel: input.payloadChannel,
			vmmEnvironment: input.vmmEnvironment,
		}),
		starter: 'caller',
		pid: undefined,
		tempDir: undefined,
		vmmFile: undefined,
		payloadState: 'Starting',
		hungUp: false,
		stopRequest: undefined,
		pendingKill: false,
		killSent: false,
		endRequestedBy: undefined,
		refusals: {reported: 0, muted: 0},
		startError: undefined,
		death: undefined,
		controlRequests: 0,
		controlFailure: undefined,
	}),
	initial: 'NotStarted',
	output: ({context}) => ({cid: context.cid, death: context.death, error: context.startError}),
	states: {
		NotStarted: {
			initial: 'idle',
			states: {
				idle: {
					on: {
						START: {target: 'launching', actions: ['noteStarter', 'logStart']},
					},
				},
				// A transient inside NotStarted: the VM is not running until the VMM has been spawned.
				launching: {
					invoke: {
						id: 'launch',
						src: 'launchVmm',
						// Whether the START came in a spawn turn its sender took: known only from the event.
						input: ({context, event}) => {
							assertEvent(event, 'START');
							return {env: context.env, cid: context.cid, payloadChannel: context.env.payloadChannel, requester: context.env.requester, admitted: event.admitted === true};
						},
						onDone: {
							target: '#vm.Running',
							actions: [
								{type: 'recordLaunch', params: ({event}) => event.output},
								{type: 'emitStarted', params: ({event}) => event.output},
							],
						},
						onError: {
							target: '#vm.Failed',
							actions: [
								{type: 'recordStartError', params: startErrorOf},
								{type: 'logFailure', params: startErrorOf},
								{type: 'reportFailure', params: startErrorOf},
							],
						},
					},
					on: {
						KILL: {actions: ['noteEndRequester', 'notePendingKill']},
						STOP: {actions: ['noteEndRequester', 'noteStopRequest']},
					},
				},
			},
		},
		Running: {
			type: 'parallel',
			// A kill asked for while launching is carried out as soon as there is something to kill.
			always: {guard: 'hasPendingKill', actions: ['emitKilling', 'killVmm', 'markKillSent']},
			invoke: [
				{
					id: 'vmm',
					src: 'watchVmm',
					input: ({context, event}) => {
						assertEvent(event, 'xstate.done.actor.launch');
						return {vmm: event.output.vmm, env: context.env, tempDir: event.output.tempDir, captures: event.output.captures};
					},
				},
				{
					id: 'payloadChannel',
					src: 'readPayloadChannel',
					input: ({context, event}) => {
						assertEvent(event, 'xstate.done.actor.launch');
						return {stream: event.output.vmm.payloadStream, logger: context.env.logger};
					},
				},
			],
			on: {
				KILL: {guard: 'canKill', actions: ['noteEndRequester', 'emitKilling', 'killVmm', 'markKillSent']},
				'VMM.DONE': {
					target: 'Dead',
					actions: [
						{type: 'logDeathFacts', params: ({event}) => event},
						{type: 'recordDeath', params: ({event}) => event},
					],
				},
			},
			states: {
				process: {
					initial: 'running',
					states: {
						running: {
							on: {
								'VMM.EXIT': {target: 'exited', actions: {type: 'logExit', params: ({event}) => event.exit}},
							},
						},
						// Exited; the failure text and the driver's reading are still being gathered (bounded).
						exited: {},
					},
				},
				payload: {
					initial: 'Starting',
					states: {
						Starting: {
							// A timer (see services/vmm/timer.ts for why not `after`) only when the hang-up is
							// watched: an invoked actor is kilobytes that a fleet would hold for every VM.
							initial: 'unwatched',
							states: {
								unwatched: {
									always: {guard: 'detectsHangup', target: 'watching'},
								},
								watching: {
									invoke: {id: 'hangupWatch', src: 'vmTimer', input: ({context}) => ({ms: context.bootHangupTimeoutMs, event: {type: 'HANGUP.DUE'}})},
								},
							},
							on: {
								'HANGUP.DUE': {guard: 'hangupDue', actions: ['markHungUp', 'logHangup', 'emitHangup', 'killVmm', 'markKillSent']},
								'PAYLOAD.REPORT': payloadTransitions(['Started', 'Ready', 'Finished']),
								// Re-entered: the watch starts over with the whole timeout.
								'EXECUTION.RESUMED': {target: 'Starting', reenter: true},
							},
						},
						Started: {
							on: {'PAYLOAD.REPORT': payloadTransitions(['Ready', 'Finished'])},
						},
						Ready: {
							on: {'PAYLOAD.REPORT': payloadTransitions(['Finished'])},
						},
						Finished: {
							on: {'PAYLOAD.REPORT': payloadTransitions([])},
						},
					},
				},
				// A guest flooding refused reports costs a counter each, not a log line and an event:
				// the first few of a window are reported one by one, the rest summed up when it ends.
				refusals: {
					initial: 'reporting',
					states: {
						reporting: {
							entry: 'resetRefusals',
							on: {
								'PAYLOAD.REFUSED': [
									{guard: 'refusalBudgetLeft', actions: ['countReportedRefusal', 'logPayloadRefusal', 'emitPayloadRefused']},
									{target: 'muted', actions: 'countMutedRefusal'},
								],
							},
						},
						// Left when the window ends or the VM dies: either way the count is logged.
						muted: {
							exit: 'logMutedRefusals',
							after: {payloadRefusalWindow: 'reporting'},
							on: {
								'PAYLOAD.REFUSED': {actions: 'countMutedRefusal'},
							},
						},
					},
				},
				// Suspend and resume through the VMM (crosvm's control socket, QEMU's QMP). A suspended VM
				// can still be stopped or killed; the hang-up watch does not run while it is suspended.
				execution: {
					initial: 'running',
					states: {
						running: {
							on: {
								SUSPEND: {guard: 'vmmRunning', target: 'suspending', actions: 'countControlRequest'},
							},
						},
						suspending: {
							invoke: {
								id: 'suspendRequest',
								src: 'suspendVmm',
								input: controlInput,
								onDone: 'suspended',
								// Still running: a hang-up deadline that passed meanwhile was skipped, so the watch starts over.
								onError: {
									target: 'running',
									actions: [...controlFailureActions, 'raiseResumed'],
								},
							},
						},
						suspended: {
							entry: 'logSuspended',
							on: {
								RESUME: {guard: 'vmmRunning', target: 'resuming', actions: 'countControlRequest'},
							},
						},
						resuming: {
							invoke: {
								id: 'resumeRequest',
								src: 'resumeVmm',
								input: controlInput,
								onDone: {target: 'running', actions: ['logResumed', 'raiseResumed']},
								onError: {
									target: 'suspended',
									actions: controlFailureActions,
								},
							},
						},
					},
				},
				stop: {
					initial: 'idle',
					states: {
						idle: {
							always: {guard: 'hasStopRequest', target: 'stopping'},
							on: {
								STOP: {guard: 'vmmRunning', target: 'stopping', actions: ['noteEndRequester', 'noteStopRequest']},
							},
						},
						stopping: {
							entry: 'emitStopping',
							// The timeout covers the request too: a wedged VMM may never answer it.
							invoke: {id: 'stopTimer', src: 'vmTimer', input: ({context}) => ({ms: context.stopRequest?.timeoutMs ?? context.stopTimeoutMs, event: {type: 'STOP.TIMEOUT'}})},
							on: {
								'STOP.TIMEOUT': {guard: 'canKill', target: 'killing'},
							},
							initial: 'requesting',
							states: {
								requesting: {
									invoke: {
										id: 'stopRequest',
										src: 'requestStop',
										input: ({context}) => ({env: context.env, ...launchedVmm(context)}),
										onDone: 'waiting',
										// The control socket may not exist yet (a stop right after start) or the
										// request may fail: ask again until the timeout ends it.
										onError: {target: 'retrying', actions: {type: 'logStopRequestFailed', params: ({event}) => ({error: event.error})}},
									},
								},
								retrying: {
									invoke: {id: 'stopRetry', src: 'vmTimer', input: {ms: STOP_RETRY_INTERVAL_MS, event: {type: 'STOP.RETRY'}}},
									on: {'STOP.RETRY': 'requesting'},
								},
								waiting: {},
							},
						},
						killing: {
							entry: ['emitKilling', 'killVmm', 'markKillSent'],
						},
					},
				},
			},
		},
		Dead: {
			type: 'final',
			// Leaving Running stopped the `vmm` actor, which released the VMM's streams, descriptors
			// and directory. XState stops it and delivers emitted events after the transition, in
			// that order: `died` listeners see state Dead and nothing of the VM left.
			entry: ['logDeath', 'reportDeath'],
		},
		Failed: {
			type: 'final',
		},
	},
});
