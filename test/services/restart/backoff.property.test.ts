import {describe, expect, test} from '@jest/globals';
import fc from 'fast-check';
import {createActor, SimulatedClock} from 'xstate';
import {backoffBaseMs, backoffDelayMs} from '../../../src/services/restart/backoff.js';
import {RestartEnvironment} from '../../../src/services/restart/environment.js';
import {resolveRestartPolicy, type BackoffPolicy} from '../../../src/services/restart/policy.js';
import type {RestartEmitted} from '../../../src/machines/restart.machine.js';
import {death, fakeLife, restartHarness} from '../../machines/restart-harness.js';

const MAX_DELAY = 2 ** 31 - 1;

const backoffPolicy: fc.Arbitrary<BackoffPolicy> = fc
	.record({
		initialDelayMs: fc.integer({min: 0, max: MAX_DELAY}),
		factor: fc.double({min: 1, max: 100, noNaN: true}),
		extra: fc.integer({min: 0, max: MAX_DELAY}),
		jitter: fc.double({min: 0, max: 1, noNaN: true}),
	})
	.map(({initialDelayMs, factor, extra, jitter}) => ({initialDelayMs, factor, maxDelayMs: Math.min(MAX_DELAY, initialDelayMs + extra), jitter}));

describe('backoff schedule', () => {
	test('without jitter it starts at the initial delay and grows monotonically up to the cap, never past it', () => {
		fc.assert(fc.property(backoffPolicy, fc.integer({min: 0, max: 2000}), (backoff, attempts) => {
			expect(backoffBaseMs(backoff, 0)).toBe(backoff.initialDelayMs);
			let previous = 0;
			for (let attempt = 0; attempt <= attempts; attempt += Math.max(1, Math.floor(attempts / 50))) {
				const base = backoffBaseMs(backoff, attempt);
				expect(Number.isInteger(base)).toBe(true);
				expect(base).toBeGreaterThanOrEqual(previous);
				expect(base).toBeLessThanOrEqual(backoff.maxDelayMs);
				previous = base;
			}
		}));
	});

	test('reaches the cap and stays there when the factor grows it', () => {
		fc.assert(fc.property(backoffPolicy.filter(backoff => backoff.factor >= 1.5 && backoff.initialDelayMs > 0), backoff => {
			expect(backoffBaseMs(backoff, 10_000)).toBe(backoff.maxDelayMs);
		}));
	});

	test('jitter takes at most its fraction off the delay, and never makes it longer', () => {
		fc.assert(fc.property(backoffPolicy, fc.nat(100), fc.double({min: 0, max: 1, noNaN: true, maxExcluded: true}), (backoff, attempt, random) => {
			const base = backoffBaseMs(backoff, attempt);
			const delay = backoffDelayMs(backoff, attempt, random);
			expect(Number.isInteger(delay)).toBe(true);
			expect(delay).toBeLessThanOrEqual(base);
			expect(delay).toBeGreaterThanOrEqual(Math.floor(base * (1 - backoff.jitter)));
		}));
	});
});

describe('reset after healthy running, through the restart machine on a simulated clock', () => {
	const backoff = {initialDelayMs: 10, factor: 2, maxDelayMs: 640, jitter: 0};
	const resetAfterMs = 1000;
	const policy = resolveRestartPolicy({restart: 'on-failure', backoff, resetAfterMs, intensity: {maxRestarts: 1000, windowMs: 1000}});

	test('each restart waits the next step, and a life that ran resetAfterMs starts the steps over', () => {
		fc.assert(fc.property(fc.array(fc.integer({min: 0, max: 2 * resetAfterMs}), {minLength: 1, maxLength: 20}), lifetimes => {
			const clock = new SimulatedClock();
			const lives = [createActor(fakeLife).start()];
			const parent = createActor(restartHarness(policy, 'start', new RestartEnvironment(() => clock.now(), () => 0), lives[0]!), {clock}).start();
			const restart = parent.getSnapshot().children.restart!;
			const scheduled: number[] = [];
			restart.on('supervisor.restart.scheduled', (event: RestartEmitted & {type: 'supervisor.restart.scheduled'}) => scheduled.push(event.delayMs));
			const expected: number[] = [];
			let attempt = 0;
			lives[0]!.send({type: 'RUN'});
			for (const lifetime of lifetimes) {
				clock.increment(lifetime);
				restart.send({type: 'LIFE.DIED', death: death('CRASH', 'vmm')});
				attempt = lifetime >= resetAfterMs ? 0 : attempt;
				expected.push(Math.min(backoff.maxDelayMs, backoff.initialDelayMs * (2 ** attempt)));
				attempt++;
				clock.increment(scheduled.at(-1) ?? 0);
				const life = createActor(fakeLife).start();
				lives.push(life);
				restart.send({type: 'LIFE.SPAWNED', vm: life});
				life.send({type: 'RUN'});
			}

			expect(scheduled).toEqual(expected);
			parent.stop();
			for (const life of lives) {
				life.stop();
			}
		}));
	});
});
