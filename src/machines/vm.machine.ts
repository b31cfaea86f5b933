import path from 'node:path';
import {assign, emit, fromCallback, fromPromise, setup} from 'xstate';
import type winston from 'winston';
import {InvalidConfigError, VmwardenError, InvalidPayloadTransitionError, VmSpawnError} from '../errors.js';
import {DeathReason} from '../services/death/reason.js';
import {decideDeathReason, deathInitiator, splitFailureText} from '../services/death/decide.js';
import {FAILURE_CHANNEL_GRACE_MS} from '../services/death/failure-channel.js';
import {vmLogger} from '../services/logging/logger.js';
import {openDescriptors} from '../services/vmm/descriptors.js';
import {payloadChannelReader} from '../services/payload/channel.js';
import {isForwardMove, type PayloadState} from '../services/payload/state.js';
import type {PayloadReport} from '../services/payload/protocol.js';
import {createTempDir, removeTempDir} from '../services/vmm/temp-dir.js';
import {validateConfig} from '../services/config/validate.js';
import type {VmConfig} from '../services/config/vm-config.js';
import type {VmmDriver, VmmExit} from '../services/vmm/driver.js';
import {spawnVmm, type VmmProcess} from '../services/vmm/process.js';
import {type Initiator, type Requester, type VmDeath, type VmEvent} from '../types.js';

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
	bootHangupTimeoutMs: number;
	/** How long `stop()` waits for the VMM to exit before it kills it. */
	stopTimeoutMs: number;
	requester: Requester;
	/** Whether to give the guest the payload report channel (`/dev/ttyS2`). */
	payloadChannel: boolean;
}

/**
 * What the machine needs but an inspector should not serialize (the config may hold FileHandles, the
 * driver and logger are objects with functions and streams): kept behind a summary.
 */
export class VmEnvironment {
	constructor(
		readonly config: VmConfig,
		readonly driver: VmmDriver,
		readonly vmmPath: string,
		readonly tempRoot: string,
		readonly logger: winston.Logger,
	) {}

	/** Where the VMM's control socket goes: in the VM's temporary directory, as Android does. */
	controlSocket(tempDir: string): string {
		return path.join(tempDir, `${this.driver.name}.sock`);
	}

	toJSON(): {driver: string; vmmPath: string; tempRoot: string} {
		return {driver: this.driver.name, vmmPath: this.vmmPath, tempRoot: this.tempRoot};
	}
}

/** What a parent receives in `xstate.done.actor.<id>`: the death, or the start error. */
export interface VmOutput {
	death: VmDeath | undefined;
	error: VmwardenError | undefined;
}

/** A stop that was asked for: by whom, and how long to wait before killing. */
export interface StopRequest {
	initiator: Initiator;
	timeoutMs: number;
}

export interface VmContext {
	cid: number;
	protected: boolean;
	requester: Requester;
	detectHangup: boolean;
	payloadChannel: boolean;
	bootHangupTimeoutMs: number;
	stopTimeoutMs: number;
	env: VmEnvironment;
	/** Who sent START. */
	starter: Initiator;
	tempDir: string | undefined;
	/** The running VMM (serializes to `{pid, exited}`). */
	vmm: VmmProcess | undefined;
	pid: number | undefined;
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
	startError: VmwardenError | undefined;
	death: VmDeath | undefined;
}

/** Events the VM accepts from outside. */
export type VmCommandEvent =
	| {type: 'START'; initiator?: Initiator}
	| {type: 'PAYLOAD.REPORT'; state: PayloadState; initiator: Initiator; report?: PayloadReport}
	| {type: 'KILL'; initiator?: Initiator}
	| {type: 'STOP'; timeoutMs?: number; initiator?: Initiator};

/** Events the VMM watcher sends: the exit as soon as it is known, then everything needed to decide. */
export type VmmWatchEvent =
	| {type: 'VMM.EXIT'; exit: VmmExit}
	| {
		type: 'VMM.DONE';
		exit: VmmExit;
		waitError: string | undefined;
		failureText: string;
		failureTruncated: boolean;
		exitReason: DeathReason;
		stderrTail: string;
	};

export type VmMachineEvent = VmCommandEvent | VmmWatchEvent;

interface LaunchInput {
	env: VmEnvironment;
	cid: number;
	payloadChannel: boolean;
}

interface Launched {
	tempDir: string;
	vmm: VmmProcess;
}

/** A failure of something vmwarden called, as a typed error (anything untyped is a spawn failure). */
function asVmwardenError(error: unknown, vmmPath: string): VmwardenError {
	return error instanceof VmwardenError ? error : new VmSpawnError('VMM_SPAWN_FAILED', vmmPath, `Could not start the VM: ${String(error)}`, {cause: error});
}

/**
 * Validates, creates the 0700 temporary directory, builds the command, opens the descriptors and
 * spawns the VMM. Whatever it made is released again when a later step fails or the VM is stopped
 * meanwhile.
 */
async function launch({input, signal}: {input: LaunchInput; signal: AbortSignal}): Promise<Launched> {
	const {env, cid, payloadChannel} = input;
	const undo: Array<() => void> = [];
	try {
		validateConfig(env.config);
		let tempDir: string;
		try {
			tempDir = createTempDir(env.tempRoot, cid);
		} catch (error) {
			throw new InvalidConfigError('tempRoot', `cannot create a temporary directory in ${env.tempRoot}: ${(error as Error).message}`, {cause: error});
		}

		undo.push(() => removeTempDir(tempDir, env.logger));
		const command = env.driver.command(env.config, {cid, tempDir, controlSocket: env.controlSocket(tempDir), payloadChannel});
		const opened = openDescriptors(command.fds);
		undo.push(() => {
			opened.close();
		});
		const channelFd = (role: 'failure' | 'payload') => command.fds.find(entry => entry.kind === 'channel' && entry.role === role)?.childFd;
		const vmm = await spawnVmm({
			vmmPath: env.vmmPath,
			args: command.args,
			descriptors: opened.stdio,
			failureFd: channelFd('failure'),
			payloadFd: channelFd('payload'),
			logger: env.logger,
			onDispose: opened.close,
		});
		if (signal.aborted) {
			// The VM actor was stopped while spawning: take the VMM down with it.
			vmm.kill('SIGKILL');
			await vmm.terminated;
			vmm.dispose();
			throw new VmSpawnError('VMM_SPAWN_FAILED', env.vmmPath, 'the VM was stopped while starting');
		}

		env.logger.info(`Spawned ${env.driver.name}(${vmm.pid})`);
		return {tempDir, vmm};
	} catch (error) {
		for (const step of undo.reverse()) {
			step();
		}

		throw asVmwardenError(error, env.vmmPath);
	}
}

interface WatchInput {
	vmm: VmmProcess;
	env: VmEnvironment;
	tempDir: string;
}

/**
 * Watches the VMM: sends `VMM.EXIT` the moment it exits, then `VMM.DONE` once the failure text and
 * the payload channel are finished (bounded) and the driver gave its reading of the exit. If the VM
 * actor is stopped from outside while the VMM runs, the VMM is killed and its resources released.
 */
const watchVmm = fromCallback<{type: 'NONE'}, WatchInput, VmmWatchEvent>(({input, sendBack}) => {
	const {vmm, env, tempDir} = input;
	let active = true;
	// Set once VMM.DONE is sent: from then on the machine (Dead) releases everything.
	let delivered = false;
	const deliver = (event: Extract<VmmWatchEvent, {type: 'VMM.DONE'}>) => {
		if (active) {
			delivered = true;
			sendBack(event);
		}
	};

	const watch = async () => {
		const {exit, waitError} = await vmm.terminated;
		if (!active) {
			return;
		}

		sendBack({type: 'VMM.EXIT', exit});
		const failure = await vmm.settled(FAILURE_CHANNEL_GRACE_MS);
		let exitReason: DeathReason;
		try {
			exitReason = await env.driver.exitReason(exit, {tempDir, stderrTail: vmm.stderrTail});
		} catch (error) {
			env.logger.error(`The ${env.driver.name} driver could not read the exit: ${String(error)}`);
			exitReason = DeathReason.UNKNOWN;
		}

		deliver({type: 'VMM.DONE', exit, waitError, failureText: failure.text, failureTruncated: failure.truncated, exitReason, stderrTail: vmm.stderrTail});
	};

	watch().catch((error: unknown) => {
		// Never expected; still the VM must die with a reason rather than hang in Running.
		deliver({type: 'VMM.DONE', exit: {exitCode: undefined, signal: undefined}, waitError: String(error), failureText: '', failureTruncated: false, exitReason: DeathReason.UNKNOWN, stderrTail: vmm.stderrTail});
	});
	return () => {
		active = false;
		if (delivered) {
			return;
		}

		// The actor was stopped from outside (a parent stopping its child): nobody will enter Dead,
		// so end the VMM here and release what it held once it is gone.
		if (vmm.kill('SIGKILL')) {
			env.logger.warn(`VM actor stopped while ${env.driver.name}(${vmm.pid}) runs: killed it`);
		}

		void vmm.settled(FAILURE_CHANNEL_GRACE_MS).then(() => {
			vmm.dispose();
			removeTempDir(tempDir, env.logger);
		});
	};
});

interface StopInput {
	env: VmEnvironment;
	vmm: VmmProcess;
	tempDir: string;
}

async function requestStop({input}: {input: StopInput}): Promise<void> {
	const {env, vmm, tempDir} = input;
	await env.driver.requestStop({vmmPath: env.vmmPath, tempDir, pid: vmm.pid, controlSocket: env.controlSocket(tempDir)});
}

type PayloadReportEvent = Extract<VmMachineEvent, {type: 'PAYLOAD.REPORT'}>;

/** The payload region's transitions out of `from`: forward to any later state, anything else refused. */
function payloadTransitions(later: PayloadState[]) {
	return [
		...later.map(state => ({guard: {type: 'reportsPayloadState' as const, params: {state}}, target: state, actions: ['emitPayloadMove' as const, 'recordPayloadState' as const]})),
		{actions: ['logPayloadRefusal' as const, 'refusePayloadMove' as const]},
	];
}

/** How soon a failed stop request is repeated (within the stop timeout). */
export const STOP_RETRY_INTERVAL_MS = 100;

function isRunning(vmm: VmmProcess | undefined): boolean {
	return vmm !== undefined && !vmm.hasExited;
}

/**
 * One VM, as the reference's `VmInstance`: NotStarted -> Running -> Dead | Failed. See docs/vm.md for
 * the regions of Running and the death decision.
 */
export const vmMachine = setup({
	types: {
		context: {} as VmContext,
		events: {} as VmMachineEvent,
		input: {} as VmMachineInput,
		output: {} as VmOutput,
		emitted: {} as VmEvent,
	},
	actors: {
		launchVmm: fromPromise(launch),
		watchVmm,
		readPayloadChannel: payloadChannelReader,
		requestStop: fromPromise(requestStop),
	},
	delays: {
		bootHangupTimeout: ({context}) => context.bootHangupTimeoutMs,
		stopTimeout: ({context}) => context.stopRequest?.timeoutMs ?? context.stopTimeoutMs,
		stopRetryInterval: STOP_RETRY_INTERVAL_MS,
	},
	guards: {
		// Reads the process itself, not the process region: an exit that the machine has not yet
		// processed must still win over a deadline that expires in the same instant.
		vmmRunning: ({context}) => isRunning(context.vmm),
		canKill: ({context}) => isRunning(context.vmm) && !context.killSent,
		hangupDue: ({context}) => context.detectHangup && isRunning(context.vmm),
		hasStopRequest: ({context}) => context.stopRequest !== undefined,
		hasPendingKill: ({context}) => context.pendingKill && !context.killSent,
		reportsPayloadState: ({event}, params: {state: PayloadState}) => event.type === 'PAYLOAD.REPORT' && event.state === params.state,
	},
	actions: {
		noteStarter: assign({
			starter: ({event}) => (event.type === 'START' ? (event.initiator ?? 'caller') : 'caller'),
		}),
		recordLaunch: assign(({event}) => {
			const {tempDir, vmm} = (event as unknown as {output: Launched}).output;
			return {tempDir, vmm, pid: vmm.pid};
		}),
		recordStartError: assign({
			startError: ({event}) => (event as unknown as {error: VmwardenError}).error,
		}),
		emitStarted: emit(({context}) => ({type: 'started' as const, cid: context.cid, initiator: context.starter, pid: context.pid!, tempDir: context.tempDir!})),
		reportFailure: emit(({context}) => ({type: 'failed' as const, cid: context.cid, initiator: context.starter, error: context.startError!})),
		logFailure: ({context}) => {
			context.env.logger.error(`Failed to start the VM: ${context.startError?.message ?? 'unknown error'}`);
		},
		emitPayloadMove: emit(({context, event}) => ({
			type: 'payload' as const,
			cid: context.cid,
			initiator: (event as PayloadReportEvent).initiator,
			from: context.payloadState,
			to: (event as PayloadReportEvent).state,
		})),
		recordPayloadState: assign({
			payloadState: ({event}) => (event as PayloadReportEvent).state,
		}),
		refusePayloadMove: emit(({context, event}) => {
			const {state, initiator} = event as PayloadReportEvent;
			const {message} = new InvalidPayloadTransitionError(context.payloadState, state);
			return {type: 'payload-refused' as const, cid: context.cid, initiator, from: context.payloadState, to: state, message};
		}),
		logPayloadRefusal: ({context, event}) => {
			const {state, initiator} = event as PayloadReportEvent;
			context.env.logger.warn(`${initiator} report refused: ${new InvalidPayloadTransitionError(context.payloadState, state).message}`);
		},
		markHungUp: assign({hungUp: true}),
		emitHangup: emit(({context}) => ({type: 'hangup' as const, cid: context.cid, initiator: 'guest' as const, timeoutMs: context.bootHangupTimeoutMs})),
		logHangup: ({context}) => {
			context.env.logger.error(`Payload failed to start within ${context.bootHangupTimeoutMs} ms. Shutting down`);
		},
		noteEndRequester: assign({
			endRequestedBy: ({context, event}) => context.endRequestedBy ?? ((event as {initiator?: Initiator}).initiator ?? 'caller'),
		}),
		notePendingKill: assign({pendingKill: true}),
		noteStopRequest: assign({
			stopRequest: ({context, event}) => context.stopRequest ?? {
				initiator: (event as {initiator?: Initiator}).initiator ?? 'caller',
				timeoutMs: (event as {timeoutMs?: number}).timeoutMs ?? context.stopTimeoutMs,
			},
		}),
		markKillSent: assign({killSent: true}),
		killVmm: ({context}) => {
			const {vmm, env} = context;
			if (vmm === undefined || vmm.hasExited) {
				return;
			}

			env.logger.info(`Killing ${env.driver.name}(${vmm.pid})`);
			if (!vmm.kill('SIGKILL') && !vmm.hasExited) {
				env.logger.error(`Error killing ${env.driver.name}(${vmm.pid})`);
			}
		},
		emitKilling: emit(({context}) => ({type: 'killing' as const, cid: context.cid, initiator: context.endRequestedBy ?? 'guest', pid: context.pid ?? 0})),
		emitStopping: emit(({context}) => ({
			type: 'stopping' as const,
			cid: context.cid,
			initiator: context.stopRequest?.initiator ?? 'caller',
			timeoutMs: context.stopRequest?.timeoutMs ?? context.stopTimeoutMs,
		})),
		logStopRequestFailed: ({context, event}) => {
			context.env.logger.debug(`Stop request failed, retrying until the stop timeout: ${String((event as unknown as {error: unknown}).error)}`);
		},
		logExit: ({context, event}) => {
			const {exit} = event as Extract<VmMachineEvent, {type: 'VMM.EXIT'}>;
			const status = exit.signal === undefined ? `exit status ${exit.exitCode ?? 'unknown'}` : `signal ${exit.signal}`;
			context.env.logger.info(`${context.env.driver.name}(${context.pid}) exited with ${status}`);
		},
		logDeathFacts: ({context, event}) => {
			const done = event as Extract<VmMachineEvent, {type: 'VMM.DONE'}>;
			const {logger, driver} = context.env;
			if (done.waitError !== undefined) {
				logger.error(`Error waiting for ${driver.name}(${context.pid}) to die: ${done.waitError}`);
			}

			if (done.failureText.length > 0) {
				logger.info(`VM returned failure reason '${done.failureText}'${done.failureTruncated ? ' (truncated)' : ''}`);
			}
		},
		recordDeath: assign({
			death: ({context, event}) => {
				const done = event as Extract<VmMachineEvent, {type: 'VMM.DONE'}>;
				const reason = decideDeathReason({waitError: done.waitError, failureText: done.failureText, hungUp: context.hungUp, exitReason: done.exitReason});
				return {
					cid: context.cid,
					reason,
					exitCode: done.exit.exitCode,
					signal: done.exit.signal,
					...splitFailureText(done.failureText),
					payloadState: context.payloadState,
					stderrTail: done.stderrTail,
					initiator: deathInitiator(reason, context.endRequestedBy),
				};
			},
		}),
		release: ({context}) => {
			context.vmm?.dispose();
			if (context.tempDir !== undefined) {
				removeTempDir(context.tempDir, context.env.logger);
			}
		},
		reportDeath: emit(({context}) => ({type: 'died' as const, cid: context.cid, initiator: context.death!.initiator, death: context.death!})),
		logDeath: ({context}) => {
			context.env.logger.info(`VM died: ${context.death!.reason}`);
		},
	},
}).createMachine({
	id: 'vm',
	context: ({input}) => ({
		cid: input.cid,
		protected: input.config.protected ?? false,
		requester: input.requester,
		detectHangup: input.config.detectHangup ?? false,
		payloadChannel: input.payloadChannel,
		bootHangupTimeoutMs: input.bootHangupTimeoutMs,
		stopTimeoutMs: input.stopTimeoutMs,
		env: new VmEnvironment(input.config, input.driver, input.vmmPath, input.tempRoot, vmLogger(input.logger, input.cid)),
		starter: 'caller',
		tempDir: undefined,
		vmm: undefined,
		pid: undefined,
		payloadState: 'Starting',
		hungUp: false,
		stopRequest: undefined,
		pendingKill: false,
		killSent: false,
		endRequestedBy: undefined,
		startError: undefined,
		death: undefined,
	}),
	initial: 'NotStarted',
	output: ({context}) => ({death: context.death, error: context.startError}),
	states: {
		NotStarted: {
			initial: 'idle',
			states: {
				idle: {
					on: {
						START: {target: 'launching', actions: 'noteStarter'},
					},
				},
				// A transient inside NotStarted: the VM is not running until the VMM has been spawned.
				launching: {
					invoke: {
						src: 'launchVmm',
						input: ({context}) => ({env: context.env, cid: context.cid, payloadChannel: context.payloadChannel}),
						onDone: {target: '#vm.Running', actions: 'recordLaunch'},
						onError: {target: '#vm.Failed', actions: 'recordStartError'},
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
			entry: 'emitStarted',
			// A kill asked for while launching is carried out as soon as there is something to kill.
			always: {guard: 'hasPendingKill', actions: ['emitKilling', 'killVmm', 'markKillSent']},
			invoke: [
				{src: 'watchVmm', input: ({context}) => ({vmm: context.vmm!, env: context.env, tempDir: context.tempDir!})},
				{src: 'readPayloadChannel', input: ({context}) => ({stream: context.vmm!.payloadStream, logger: context.env.logger})},
			],
			on: {
				KILL: {guard: 'canKill', actions: ['noteEndRequester', 'emitKilling', 'killVmm', 'markKillSent']},
				'VMM.DONE': {target: 'Dead', actions: ['logDeathFacts', 'recordDeath']},
			},
			states: {
				process: {
					initial: 'running',
					states: {
						running: {
							on: {
								'VMM.EXIT': {target: 'exited', actions: 'logExit'},
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
							after: {
								bootHangupTimeout: {guard: 'hangupDue', actions: ['markHungUp', 'logHangup', 'emitHangup', 'killVmm', 'markKillSent']},
							},
							on: {'PAYLOAD.REPORT': payloadTransitions(['Started', 'Ready', 'Finished'])},
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
							after: {stopTimeout: {guard: 'canKill', target: 'killing'}},
							initial: 'requesting',
							states: {
								requesting: {
									invoke: {
										src: 'requestStop',
										input: ({context}) => ({env: context.env, vmm: context.vmm!, tempDir: context.tempDir!}),
										onDone: 'waiting',
										// The control socket may not exist yet (a stop right after start) or the
										// request may fail: ask again until the timeout ends it.
										onError: {target: 'retrying', actions: 'logStopRequestFailed'},
									},
								},
								retrying: {
									after: {stopRetryInterval: 'requesting'},
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
			// XState runs these during the transition and delivers emitted events once the snapshot is
			// Dead: listeners see state Dead, the temporary directory gone and the descriptors closed.
			entry: ['release', 'logDeath', 'reportDeath'],
		},
		Failed: {
			type: 'final',
			entry: ['logFailure', 'reportFailure'],
		},
	},
});
