import {mkdtempSync} from 'node:fs';
import path from 'node:path';
import {describe, expect, test} from '@jest/globals';
import {execa} from 'execa';
import {initialTransition, type SnapshotFrom} from 'xstate';
import {createTestModel, type TestPath} from 'xstate/graph';
import {supervisorMachine} from '../../src/machines/supervisor.machine.js';
import {writeVmRecord} from '../../src/services/state-dir/records.js';
import {createTempDir} from '../../src/services/vmm/temp-dir.js';
import {createSupervisor, type Supervisor, type SupervisorEvent} from '../../src/supervisor.js';
import {SIM_PATH, silentLogger, useVmFixture} from '../helpers/vm-fixture.js';
import {coveringWalks, describePath, modelCoverage} from '../helpers/model-coverage.js';
import {recordStatesOf, stateNodeIds} from '../helpers/real-states.js';
import {MODEL_RANGE_SIZE, SUPERVISOR_MODEL_EVENTS, supervisorModel, type SupervisorModelEvent} from './supervisor-model.js';
import {NoAvailableCidError, SupervisorShutDownError} from '../../src/errors.js';
import type {VmDeath} from '../../src/types.js';

type ModelSnapshot = SnapshotFrom<typeof supervisorModel>;
type ModelPath = TestPath<ModelSnapshot, SupervisorModelEvent>;

const model = createTestModel(supervisorModel, {events: SUPERVISOR_MODEL_EVENTS, filterEvents: (snapshot, event) => snapshot.can(event)});
const shortestPaths = model.getShortestPaths();
const simplePaths = model.getSimplePaths();
// One shortest path per state leaves most transitions untaken (they lead to states reached
// before); walks built from the state graph take every one, each walk a real supervisor session.
const walks: ModelPath[] = coveringWalks(model, initialTransition(supervisorModel)[0]).map(events => model.getPathsFromEvents(events)[0]!);
const visitedSupervisorStates = new Set<string>();
const stepTimeoutMs = 10_000;

async function eventually(what: string, condition: () => boolean): Promise<void> {
	const deadline = Date.now() + stepTimeoutMs;
	while (!condition()) {
		if (Date.now() > deadline) {
			throw new Error(`timed out waiting for ${what}`);
		}

		await new Promise(resolve => {
			setTimeout(resolve, 10);
		});
	}
}

describe(`supervisor model: ${shortestPaths.length} shortest paths, ${simplePaths.length} simple paths, ${walks.length} transition-covering walks, each run on crosvm-sim`, () => {
	test(`the ${walks.length} walks (${walks.reduce((steps, walk) => steps + walk.steps.length - 1, 0)} steps) cover every state and transition of the supervisor model`, () => {
		const coverage = modelCoverage(model, walks);
		expect(coverage.missingStates).toEqual([]);
		expect(coverage.missingTransitions).toEqual([]);
		// The shortest paths alone would not: that is why the walks exist.
		expect(modelCoverage(model, shortestPaths).missingTransitions.length).toBeGreaterThan(0);
	});

	describe('walks against the real supervisor', () => {
		const {context, guest} = useVmFixture();

		const run = async (walk: ModelPath, index: number): Promise<void> => {
			const first = 3000 + (index * 10);
			const cidOf = (offset: number) => first + offset;
			const stateDir = mkdtempSync(path.join(context.scripts, 'state-'));
			// A record a previous instance left of a VM that is gone (its CID outside the range), so the
			// supervisor starts in Reaping.
			const finished = execa('true', {cleanup: false});
			const finishedPid = finished.pid!;
			await finished;
			const staleTempDir = await createTempDir(context.tempRoot, first - 1);
			writeVmRecord(stateDir, {cid: first - 1, pid: finishedPid, startTime: '1', tempDir: staleTempDir, supervisorPid: 1});

			const started: Supervisor = createSupervisor({
				crosvmPath: SIM_PATH,
				cidRange: {first, last: first + MODEL_RANGE_SIZE - 1},
				stateDir,
				tempRoot: context.tempRoot,
				logger: silentLogger(),
				inspect: recordStatesOf(supervisorMachine, visitedSupervisorStates),
			});

			const events: SupervisorEvent[] = [];
			started.events$.subscribe(event => {
				events.push(event);
			});
			await started.reaped;
			const allocations: number[] = [];
			const deaths = new Map<number, VmDeath>();
			const config = {kernel: guest('payload started', 'hang')};

			try {
				await walk.test({
					events: {
						async CREATE({state}) {
							const vm = await started.createVm(config);
							expect(vm.cid).toBe(cidOf(state.context.last!));
							allocations.push(vm.cid);
							void vm.died.then(death => deaths.set(vm.cid, death));
							await vm.start();
						},
						async CREATE_REFUSED({state}) {
							await expect(started.createVm(config)).rejects.toThrow(state.context.refusal === 'NO_CID' ? NoAvailableCidError : SupervisorShutDownError);
						},
						async STOP_LOWEST() {
							const vm = started.vms()[0]!;
							const death = await vm.stop();
							expect(death).toMatchObject({cid: vm.cid, reason: 'SHUTDOWN', initiator: 'caller'});
							await eventually(`CID ${vm.cid} released`, () => started.get(vm.cid) === undefined);
						},
						async KILL_HIGHEST() {
							const vm = started.vms().at(-1)!;
							vm.kill();
							expect(await vm.died).toMatchObject({cid: vm.cid, reason: 'KILLED', signal: 'SIGKILL', initiator: 'caller'});
							await eventually(`CID ${vm.cid} released`, () => started.get(vm.cid) === undefined);
						},
						async SHUTDOWN() {
							const live = started.vms();
							await started.shutdown({stopTimeoutMs: 5000});
							for (const vm of live) {
								expect(await vm.died).toMatchObject({cid: vm.cid, reason: 'SHUTDOWN', initiator: 'supervisor'});
							}
						},
					},
					states: {
						'*'(snapshot: ModelSnapshot) {
							const held = snapshot.context.held.map(cidOf);
							expect(started.vms().map(vm => vm.cid)).toEqual(held);
							expect(started.vms().every(vm => vm.state === 'Running')).toBe(true);
							// Allocation order: what the supervisor announced is what the model computed.
							expect(events.filter(event => event.type === 'supervisor.cid.allocated').map(event => event.cid)).toEqual(allocations);
							// A CID is never held twice.
							expect(new Set(held).size).toBe(held.length);
							if (snapshot.matches('ShutDown')) {
								expect(started.actor.getSnapshot().matches('ShutDown')).toBe(true);
								expect(events.some(event => event.type === 'supervisor.shutdown.completed')).toBe(true);
							} else {
								expect(started.actor.getSnapshot().matches({Serving: {fleet: 'Accepting'}})).toBe(true);
							}
						},
					},
				});
				// Every VM died exactly once, and each release followed its death.
				const died = events.filter(event => event.type === 'died');
				expect(died.map(event => event.cid).sort()).toEqual([...allocations].sort());
				expect(events.filter(event => event.type === 'supervisor.cid.released' && event.cause === 'vm cleaned up').map(event => event.type === 'supervisor.cid.released' && event.cid).sort())
					.toEqual([...allocations].sort());
				expect(events).toContainEqual(expect.objectContaining({type: 'supervisor.staleVm.reaped', cid: first - 1}));
			} finally {
				await started.shutdown();
			}
		};

		test.each(walks.map((walk, index) => [describePath(walk), walk, index] as const))('%s', async (_description, walk, index) => {
			await run(walk, index);
		}, 60_000);
	});

	test('every state of the real supervisor machine was entered by the walks', () => {
		const unvisited = [...stateNodeIds(supervisorMachine)].filter(id => !visitedSupervisorStates.has(id));
		expect(unvisited).toEqual([]);
	});
});

