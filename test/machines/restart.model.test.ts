/**
 * Model-based tests of the restart machine: every path the abstract model (restart-model.ts) gives
 * is run against the real machine, spawned by a harness parent as the supervisor spawns it, with
 * fake VM lives and a simulated clock. After each step the real state must equal the model's, and
 * each scheduled restart must carry the model's delay. The walks together cover every transition of
 * the model, and the real machine's states visited cover every state node of its chart.
 */
import {describe, expect, test} from '@jest/globals';
import {createActor, initialTransition, SimulatedClock, type ActorRefFrom, type SnapshotFrom} from 'xstate';
import {createTestModel, type TestPath} from 'xstate/graph';
import {restartMachine, type RestartEmitted} from '../../src/machines/restart.machine.js';
import {RestartEnvironment} from '../../src/services/restart/environment.js';
import {resolveRestartPolicy} from '../../src/services/restart/policy.js';
import type {VmDeath} from '../../src/types.js';
import type {DeathReason} from '../../src/services/death/reason.js';
import {coveringWalks, describePath, modelCoverage} from '../helpers/model-coverage.js';
import {stateNodeIds} from '../helpers/real-states.js';
import {chartTransitions, death, fakeLife, recordChildCoverage, restartHarness} from './restart-harness.js';
import {MODEL_POLICY, RESTART_MODEL_EVENTS, restartModel, type RestartModelEvent} from './restart-model.js';

const visited = new Set<string>();

const taken = new Set<string>();
const recordRestartStates = recordChildCoverage(restartMachine, 'restart', visited, taken);

for (const healthFrom of ['ready', 'start'] as const) {
	const modelMachine = restartModel(healthFrom);
	type ModelPath = TestPath<SnapshotFrom<typeof modelMachine>, RestartModelEvent>;
	const model = createTestModel(modelMachine, {events: RESTART_MODEL_EVENTS, filterEvents: (snapshot, event) => snapshot.can(event)});
	const shortest: ModelPath[] = model.getShortestPaths();
	const walks: ModelPath[] = coveringWalks(model, initialTransition(modelMachine)[0]).map(events => model.getPathsFromEvents(events)[0]!);

	describe(`restart model, health counted from ${healthFrom}: ${shortest.length} shortest paths, ${walks.length} covering walks`, () => {
		test('the walks take every transition of the model and enter every state it can reach', () => {
			const coverage = modelCoverage(model, walks);
			// Counting from start, no life waits for Ready.
			expect(coverage.missingStates).toEqual(healthFrom === 'start' ? ['restartModel.Alive.AwaitingReady'] : []);
			expect(coverage.missingTransitions).toEqual([]);
		});

		const run = (path: ModelPath) => {
			const clock = new SimulatedClock();
			const env = new RestartEnvironment(() => clock.now(), () => 0.5);
			let life = createActor(fakeLife).start();
			const parent = createActor(restartHarness(resolveRestartPolicy(MODEL_POLICY), healthFrom, env, life), {clock, inspect: recordRestartStates}).start();
			const restart = (): ActorRefFrom<typeof restartMachine> => parent.getSnapshot().children['restart'] as ActorRefFrom<typeof restartMachine>;
			const ref = restart();
			const emitted: RestartEmitted[] = [];
			ref.on('*', event => emitted.push(event));
			const lives: Array<ActorRefFrom<typeof fakeLife>> = [life];
			const died = (reason: DeathReason, initiator: VmDeath['initiator']) => {
				ref.send({type: 'LIFE.DIED', death: death(reason, initiator)});
			};

			for (const step of path.steps) {
				const {event, state} = step;
				switch (event.type) {
					case 'STARTED': {
						life.send({type: 'RUN'});
						break;
					}

					case 'READY': {
						life.send({type: 'READY'});
						break;
					}

					case 'HEALTHY': {
						clock.increment(MODEL_POLICY.resetAfterMs);
						break;
					}

					case 'WINDOW_PASSES': {
						clock.increment(MODEL_POLICY.intensity.windowMs);
						break;
					}

					case 'CRASH': {
						died('CRASH', 'vmm');
						break;
					}

					case 'REBOOT': {
						died('REBOOT', 'guest');
						break;
					}

					case 'POWEROFF': {
						died('SHUTDOWN', 'guest');
						break;
					}

					case 'STOPPED': {
						died('SHUTDOWN', 'caller');
						break;
					}

					case 'START_FAILED': {
						ref.send({type: 'LIFE.START_FAILED', message: 'no VMM'});
						break;
					}

					case 'BACKOFF_ELAPSED': {
						const due = parent.getSnapshot().context.due;
						clock.increment(ref.getSnapshot().context.delayMs);
						expect(parent.getSnapshot().context.due).toBe(due + 1);
						break;
					}

					case 'SPAWNED': {
						life = createActor(fakeLife).start();
						lives.push(life);
						ref.send({type: 'LIFE.SPAWNED', vm: life});
						break;
					}

					case 'END': {
						ref.send({type: 'END', initiator: 'caller'});
						break;
					}

					default: {
						// xstate.init: nothing to do.
					}
				}

				expect(ref.getSnapshot().value).toEqual(state.value);
				if (state.matches('Backoff')) {
					expect(emitted.at(-1)).toMatchObject({type: 'supervisor.restart.scheduled', delayMs: state.context.delayMs});
				}
			}

			const final = ref.getSnapshot();
			if (final.status === 'done') {
				expect(final.output?.outcome).toBe(final.matches('GaveUp') ? 'gave-up' : final.matches('Cancelled') ? 'cancelled' : 'ended');
				expect(final.output?.restarts).toBe(parent.getSnapshot().context.due);
			}

			parent.stop();
			for (const each of lives) {
				each.stop();
			}
		};

		test.each(walks.map(walk => [describePath(walk), walk] as const))('walk %s', (_title, walk) => {
			run(walk);
		});

		test.each(shortest.map(path => [describePath(path) || '(initial)', path] as const))('shortest path %s', (_title, path) => {
			run(path);
		});
	});
}

test('the paths run enter every state node of the real restart machine and take every transition of its chart', () => {
	expect([...stateNodeIds(restartMachine)].filter(id => !visited.has(id))).toEqual([]);
	expect([...chartTransitions(restartMachine)].filter(transition => !taken.has(transition))).toEqual([]);
});
