import {existsSync, mkdtempSync} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {createActor, fromCallback, fromPromise, SimulatedClock} from 'xstate';
import {vmMachine, type VmMachineInput} from '../../src/machines/vm.machine.js';
import {VmControlError, type VmwardenError} from '../../src/errors.js';
import type {ControlInput} from '../../src/services/control/operation.js';
import {crosvmDriver} from '../../src/services/crosvm/driver.js';
import type {FailureText} from '../../src/services/death/failure-channel.js';
import type {PayloadChannelInput, PayloadReportEvent} from '../../src/services/payload/channel.js';
import type {VmmExit} from '../../src/services/vmm/driver.js';
import type {LaunchInput, Launched} from '../../src/services/vmm/launch.js';
import type {VmmTermination} from '../../src/services/vmm/process.js';
import type {StopRequestInput} from '../../src/services/vmm/request-stop.js';
import {removalsSettled, removeTempDir} from '../../src/services/vmm/temp-dir.js';
import type {RunningVmm} from '../../src/services/vmm/watch.js';
import type {Requester, VmEvent} from '../../src/types.js';
import {silentLogger} from '../helpers/vm-fixture.js';
import {defaultVmmEnvironment} from '../../src/services/vmm/vmm-environment.js';

/** A VMM that exists only in memory: it exits when the test says, or at once when killed. */
export class FakeVmm implements RunningVmm {
	readonly pid: number;
	readonly file = '/fake/crosvm';
	readonly payloadStream = undefined;
	readonly terminated: Promise<VmmTermination>;
	/** What the guest wrote to its failure channel. */
	failureText = '';
	/** Whether SIGKILL is ignored (a process stuck in the kernel): then only `exit()` ends it. */
	unkillable = false;
	readonly signals: NodeJS.Signals[] = [];
	disposed = 0;
	#termination: VmmTermination | undefined;
	#resolve!: (termination: VmmTermination) => void;

	constructor(pid: number) {
		this.pid = pid;
		this.terminated = new Promise(resolve => {
			this.#resolve = resolve;
		});
	}

	get hasExited(): boolean {
		return this.#termination !== undefined;
	}

	get stderrTail(): string {
		return '';
	}

	exit(exit: Partial<VmmExit>, waitError?: string): void {
		if (this.#termination === undefined) {
			this.#termination = {exit: {exitCode: exit.exitCode, signal: exit.signal}, waitError};
			this.#resolve(this.#termination);
		}
	}

	kill(signal: NodeJS.Signals = 'SIGKILL'): boolean {
		if (this.hasExited) {
			return false;
		}

		this.signals.push(signal);
		if (!this.unkillable) {
			this.exit({signal});
		}

		return true;
	}

	async settled(_graceMs: number): Promise<FailureText> {
		await this.terminated;
		return {text: this.failureText, truncated: false};
	}

	dispose(): void {
		this.disposed++;
	}
}

/** How the fake driver answers one stop request. */
export type StopAnswer = 'fail' | 'ignored' | 'shutdown' | 'never';

export interface FakeVmOptions {
	detectHangup?: boolean;
	bootHangupTimeoutMs?: number;
	stopTimeoutMs?: number;
	/** `held`: the launch waits for `launch.finish()` (or `launch.fail()`). Default: it succeeds at once. */
	launch?: 'now' | 'held';
	/** The answers to successive stop requests; after the last, `shutdown`. */
	stopAnswers?: StopAnswer[];
	requester?: Requester;
	/** The answers to successive suspend and resume requests; after the last, `ok`. */
	controlAnswers?: ControlAnswer[];
}

/** How the fake driver answers one suspend or resume request: at once, with an error, never, or when the test says (`held`). */
export type ControlAnswer = 'ok' | 'fail' | 'never' | 'held';

/**
 * Lets microtasks and promise chains (the fake launch, the watcher) run to completion, including a
 * temporary directory's removal in the thread pool, which the watcher waits for before the death.
 */
export async function settle(): Promise<void> {
	for (let pass = 0; pass < 3; pass++) {
		for (let round = 0; round < 5; round++) {
			await new Promise(resolve => {
				setImmediate(resolve);
			});
		}

		await removalsSettled();
	}
}

let nextPid = 40_000;

/**
 * A VM actor on the real chart with fake actors and a simulated clock: the launch, the VMM and the
 * stop requests are in the test's hands, the watcher (`watchVmm`) is the real one. Delays advance
 * only with `advance(ms)`.
 */
export function fakeVm(options: FakeVmOptions = {}) {
	const clock = new SimulatedClock();
	const logger = silentLogger();
	const vmm = new FakeVmm(nextPid++);
	const stopAnswers = [...(options.stopAnswers ?? [])];
	const stopRequests: StopRequestInput[] = [];
	const controlAnswers = [...(options.controlAnswers ?? [])];
	const controlRequests: Array<'suspend' | 'resume'> = [];
	const heldControl: {answer?: (error?: Error) => void} = {};
	const answerControl = async (operation: 'suspend' | 'resume'): Promise<void> => {
		controlRequests.push(operation);
		switch (controlAnswers.shift() ?? 'ok') {
			case 'fail': {
				throw new VmControlError(operation, `crosvm ${operation} exited with 1 (fake)`, {exitCode: 1});
			}

			case 'never': {
				await new Promise(() => undefined);
				return;
			}

			case 'held': {
				await new Promise<void>((resolve, reject) => {
					heldControl.answer = error => {
						if (error === undefined) {
							resolve();
						} else {
							reject(error);
						}
					};
				});
				return;
			}

			case 'ok': {
				return;
			}
		}
	};
	const tempDirs: string[] = [];
	let finishLaunch: (() => void) | undefined;
	let failLaunch: ((error: VmwardenError) => void) | undefined;
	const launch = {
		signal: undefined as AbortSignal | undefined,
		finish() {
			finishLaunch?.();
		},
		fail(error: VmwardenError) {
			failLaunch?.(error);
		},
	};

	const machine = vmMachine.provide({
		actors: {
			launchVmm: fromPromise<Launched, LaunchInput>(async ({input, signal}) => {
				launch.signal = signal;
				if (options.launch === 'held') {
					await new Promise<void>((resolve, reject) => {
						finishLaunch = resolve;
						failLaunch = reject;
					});
				}

				// As the real launch: the directory exists from here, and is undone if the VM was stopped.
				const tempDir = mkdtempSync(path.join(os.tmpdir(), `vmw-fake-${input.cid}-`));
				tempDirs.push(tempDir);
				if (signal.aborted) {
					await removeTempDir(tempDir, input.env.logger);
					throw new Error('stopped while starting');
				}

				return {tempDir, vmm};
			}),
			requestStop: fromPromise<void, StopRequestInput>(async ({input}) => {
				stopRequests.push(input);
				const answer = stopAnswers.shift() ?? 'shutdown';
				switch (answer) {
					case 'fail': {
						throw new Error('connect ECONNREFUSED (fake)');
					}

					case 'shutdown': {
						queueMicrotask(() => {
							vmm.exit({exitCode: 0});
						});
						return;
					}

					case 'never': {
						await new Promise(() => undefined);
						return;
					}

					case 'ignored': {
						return;
					}
				}
			}),
			readPayloadChannel: fromCallback<{type: 'NONE'}, PayloadChannelInput, PayloadReportEvent>(() => undefined),
			suspendVmm: fromPromise<void, ControlInput>(async () => answerControl('suspend')),
			resumeVmm: fromPromise<void, ControlInput>(async () => answerControl('resume')),
		},
	});
	const input: VmMachineInput = {
		config: {kernel: '/fake/kernel', detectHangup: options.detectHangup ?? false},
		cid: 3000,
		driver: crosvmDriver,
		vmmPath: '/fake/crosvm',
		tempRoot: os.tmpdir(),
		logger,
		bootHangupTimeoutMs: options.bootHangupTimeoutMs ?? 10_000,
		stopTimeoutMs: options.stopTimeoutMs ?? 5000,
		requester: options.requester ?? {uid: 1000, sid: 'test', debugPid: 1},
		payloadChannel: false,
		vmmEnvironment: defaultVmmEnvironment(),
	};
	const actor = createActor(machine, {input, clock});
	const emitted: VmEvent[] = [];
	actor.on('*', event => {
		emitted.push(event);
	});

	return {
		actor,
		clock,
		vmm,
		logger,
		emitted,
		stopRequests,
		/** The suspend and resume requests the VM sent, in order. */
		controlRequests,
		/** Answers a `held` control request: with nothing it succeeds, with an error it fails. */
		answerControl(error?: Error) {
			heldControl.answer?.(error);
		},
		launch,
		/** The temporary directories the fake launch made (one, once launched). */
		tempDirs,
		/** Whether any of them is still there. */
		leftTempDir: () => tempDirs.some(directory => existsSync(directory)),
		/** Advances the simulated clock by `ms` and lets what that started run. */
		async advance(ms: number) {
			clock.increment(ms);
			await settle();
		},
		types: () => emitted.map(event => event.type),
	};
}

/** Starts a fake VM and waits until it runs. */
export async function runningFakeVm(options: FakeVmOptions = {}) {
	const vm = fakeVm(options);
	vm.actor.start();
	vm.actor.send({type: 'START'});
	await settle();
	return vm;
}
