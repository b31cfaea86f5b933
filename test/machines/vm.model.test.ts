import {existsSync} from 'node:fs';
import path from 'node:path';
import {afterAll, describe, expect, test} from '@jest/globals';
import {createTestModel, type TestPath} from 'xstate/graph';
import type {SnapshotFrom} from 'xstate';
import {VmwardenError} from '../../src/errors.js';
import {vmMachine} from '../../src/machines/vm.machine.js';
import {createCrosvmDriver} from '../../src/services/crosvm/driver.js';
import type {VmmDriver, VmmStopContext} from '../../src/services/vmm/driver.js';
import type {PayloadState} from '../../src/services/payload/state.js';
import type {Vm} from '../../src/vm.js';
import {useVmFixture} from '../helpers/vm-fixture.js';
import {recordStatesOf, stateNodeIds} from '../helpers/real-states.js';
import {planPath, VM_MODEL_EVENTS, vmModel, type VmModelEvent} from './vm-model.js';
import {describePath, modelCoverage} from '../helpers/model-coverage.js';
import type {VmEvent} from '../../src/types.js';

type ModelSnapshot = SnapshotFrom<typeof vmModel>;
type ModelPath = TestPath<ModelSnapshot, VmModelEvent>;

const model = createTestModel(vmModel, {events: VM_MODEL_EVENTS, filterEvents: (snapshot, event) => snapshot.can(event)});
const shortestPaths: ModelPath[] = model.getShortestPaths();
const simplePaths: ModelPath[] = model.getSimplePaths();
const visitedRealStates = new Set<string>();
const stepTimeoutMs = 10_000;

/** What one real VM did, as seen from outside: its snapshots (state, payload) and its events. */
interface Observed {
	trace: Array<{state: string; payload: PayloadState}>;
	events: VmEvent[];
	/** How far the path's checks have matched in `trace`. */
	cursor: number;
}

function observe(vm: Vm): Observed {
	const observed: Observed = {trace: [], events: [], cursor: -1};
	vm.snapshots$.subscribe(snapshot => {
		const state = typeof snapshot.value === 'string' ? snapshot.value : Object.keys(snapshot.value)[0]!;
		observed.trace.push({state, payload: snapshot.context.payloadState});
	});
	vm.events$.subscribe(event => {
		observed.events.push(event);
	});
	return observed;
}

async function eventually<T>(what: string, probe: () => T | undefined): Promise<T> {
	const deadline = Date.now() + stepTimeoutMs;
	for (;;) {
		const found = probe();
		if (found !== undefined) {
			return found;
		}

		if (Date.now() > deadline) {
			throw new Error(`timed out waiting for ${what}`);
		}

		await new Promise(resolve => {
			setTimeout(resolve, 10);
		});
	}
}

/** The crosvm driver with another way of asking the VMM to stop (a fault injected at the driver seam). */
function withStopRequest(driver: VmmDriver, requestStop: (context: VmmStopContext, driver: VmmDriver) => Promise<void>): VmmDriver {
	return {
		name: driver.name,
		defaultPath: driver.defaultPath,
		command: driver.command.bind(driver),
		exitReason: driver.exitReason.bind(driver),
		async requestStop(context) {
			return requestStop(context, driver);
		},
	};
}

/** Fails the first request as one fails when the control socket does not answer yet. */
function failFirstStopRequest(): (context: VmmStopContext, driver: VmmDriver) => Promise<void> {
	let failed = false;
	return async (context, driver) => {
		if (!failed) {
			failed = true;
			throw new Error('connect ECONNREFUSED (injected)');
		}

		return driver.requestStop(context);
	};
}

describe(`VM model: ${shortestPaths.length} shortest paths (${simplePaths.length} simple paths), each run on crosvm-sim`, () => {
	test(`the ${shortestPaths.length} shortest paths cover every state and every transition of the VM model`, () => {
		const coverage = modelCoverage(model, shortestPaths);
		expect(coverage.missingStates).toEqual([]);
		expect(coverage.missingTransitions).toEqual([]);
		expect(coverage.transitions).toBeGreaterThan(50);
	});

	describe('paths against the real vmMachine', () => {
		const {context, guest, vm} = useVmFixture();

		const run = async (modelPath: ModelPath): Promise<void> => {
			const events = modelPath.steps.map(step => step.event);
			const plan = planPath(events);
			const machine = vm({kernel: guest(...plan.directives), detectHangup: true}, {
				...(plan.startFails ? {crosvmPath: path.join(context.scripts, 'no-such-crosvm')} : {}),
				bootHangupTimeoutMs: plan.hangup ? 300 : 30_000,
				inspect: recordStatesOf(vmMachine, visitedRealStates),
				...(plan.failFirstStopRequest ? {driver: withStopRequest(createCrosvmDriver(), failFirstStopRequest())} : {}),
				...(plan.swallowStopRequests ? {driver: withStopRequest(createCrosvmDriver(), () => Promise.resolve())} : {}),
			});
			const observed = observe(machine);
			const reports: PayloadState[] = [];
			let lastReason: string | undefined;

			await modelPath.test({
				events: {
					async START() {
						await machine.start();
					},
					async START_FAILS() {
						await expect(machine.start()).rejects.toBeInstanceOf(VmwardenError);
					},
					async STOP() {
						await machine.stop();
					},
					async STOP_RETRIED() {
						await machine.stop();
					},
					async STOP_IGNORED() {
						await machine.stop({timeoutMs: 300});
					},
					async STOP_TIMED_OUT() {
						await machine.stop({timeoutMs: 300});
					},
					KILL() {
						machine.kill();
					},
					// REPORT, EXIT and HANGUP are the guest's doing: its script already holds them.
				},
				states: {
					async '*'(snapshot: ModelSnapshot) {
						if (snapshot.matches('NotStarted')) {
							expect(machine.state).toBe('NotStarted');
							return;
						}

						if (snapshot.matches('Failed')) {
							expect(machine.state).toBe('Failed');
							expect(observed.events.filter(event => event.type === 'failed')).toHaveLength(1);
							expect(observed.events.some(event => event.type === 'died')).toBe(false);
							return;
						}

						if (snapshot.matches('Running')) {
							const payload = snapshot.context.payload;
							// The guest runs ahead of the checks: find the state in the trace, in order.
							observed.cursor = await eventually(`Running/${payload}`, () => {
								const index = observed.trace.findIndex((entry, position) => position > observed.cursor && entry.state === 'Running' && entry.payload === payload);
								return index === -1 ? undefined : index;
							});
							if (reports.at(-1) !== payload && payload !== 'Starting') {
								reports.push(payload);
							}

							expect(observed.events.filter(event => event.type === 'payload').map(event => event.type === 'payload' && [event.from, event.to, event.initiator]).slice(0, reports.length))
								.toEqual(reports.map((to, index) => [index === 0 ? 'Starting' : reports[index - 1], to, 'guest']));
							return;
						}

						const expected = snapshot.context.death!;
						const death = await machine.died;
						lastReason = death.reason;
						expect(machine.state).toBe('Dead');
						expect(death).toEqual({
							cid: machine.cid,
							reason: expected.reason,
							exitCode: expected.exitCode,
							signal: expected.signal,
							failureReason: expected.failureReason,
							failureContext: expected.failureContext,
							payloadState: expected.payloadState,
							stderrTail: expect.any(String),
							initiator: expected.initiator,
						});
						expect(existsSync(machine.tempDir!)).toBe(false);
						const types = observed.events.map(event => event.type);
						expect(types.filter(type => type === 'died')).toHaveLength(1);
						expect(types.at(-1)).toBe('died');
						expect(types.includes('hangup')).toBe(expected.cause === 'HANGUP');
						expect(types.includes('stopping')).toBe(expected.cause.startsWith('STOP'));
						expect(types.includes('killing')).toBe(expected.cause === 'KILL' || expected.cause === 'STOP_IGNORED' || expected.cause === 'STOP_TIMED_OUT');
						expect(observed.events.filter(event => event.type === 'payload').map(event => event.type === 'payload' && event.to)).toEqual(reports);
					},
				},
			});
			if (modelPath.state.matches('Dead')) {
				expect(lastReason).toBe(modelPath.state.context.death?.reason);
			}
		};

		test.each(shortestPaths.map(modelPath => [describePath(modelPath), modelPath] as const))('%s', async (_description, modelPath) => {
			await run(modelPath);
		}, 30_000);
	});

	test('every state of the real vmMachine but the flood-only and the suspend ones was visited by the paths', () => {
		const unvisited = [...stateNodeIds(vmMachine)].filter(id => !visitedRealStates.has(id));
		// Muting refused reports takes a flood of them, which the model's guests never send: the
		// chart tests (test/machines/vm.machine.test.ts) drive that state. Suspend and resume are the
		// caller's operations, not lifecycle paths: test/machines/vm-execution.test.ts drives them on
		// the chart, test/vm/operations.test.ts on crosvm-sim.
		expect(unvisited).toEqual(['vm.Running.refusals.muted', 'vm.Running.execution.suspending', 'vm.Running.execution.suspended', 'vm.Running.execution.resuming']);
	});
});

afterAll(() => {
	visitedRealStates.clear();
});
