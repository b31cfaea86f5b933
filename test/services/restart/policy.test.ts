import {describe, expect, test} from '@jest/globals';
import {DEFAULT_FAILURE_REASONS, DEFAULT_RESTART_POLICY, mayRestart, resolveRestartPolicy} from '../../../src/services/restart/policy.js';
import {judgeDeath} from '../../../src/services/restart/verdict.js';
import {DeathReason} from '../../../src/services/death/reason.js';
import {expectInvalid} from '../../helpers/expect-invalid.js';

describe('resolveRestartPolicy', () => {
	test('without options it is the default: never restart', () => {
		expect(resolveRestartPolicy(undefined)).toBe(DEFAULT_RESTART_POLICY);
		expect(mayRestart(DEFAULT_RESTART_POLICY)).toBe(false);
	});

	test('fills what is left out from the base, field by field', () => {
		const base = resolveRestartPolicy({restart: 'always', backoff: {initialDelayMs: 5}});
		const resolved = resolveRestartPolicy({backoff: {factor: 3}}, base);
		expect(resolved).toMatchObject({restart: 'always', backoff: {initialDelayMs: 5, factor: 3, maxDelayMs: 60_000}});
	});

	test.each([
		[[], 'restartPolicy', 'must be an object'],
		[{restart: 'sometimes'}, 'restartPolicy.restart', 'must be one of never, on-failure, always, not "sometimes"'],
		[{onReboot: 'destroy'}, 'restartPolicy.onReboot', 'must be one of restart, death, not "destroy"'],
		[{failureReasons: ['CRASH', 'OOPS']}, 'restartPolicy.failureReasons[1]', '"OOPS" is not a death reason'],
		[{failureReasons: 'CRASH'}, 'restartPolicy.failureReasons', 'must be an array of at most 19 death reasons'],
		[{backoff: 5}, 'restartPolicy.backoff', 'must be an object'],
		[{backoff: {initialDelayMs: -1}}, 'restartPolicy.backoff.initialDelayMs', 'must be a whole number of milliseconds from 0 to 2147483647, not -1'],
		[{backoff: {initialDelayMs: Number.POSITIVE_INFINITY}}, 'restartPolicy.backoff.initialDelayMs', 'must be a whole number of milliseconds from 0 to 2147483647, not Infinity'],
		[{backoff: {maxDelayMs: 2 ** 31}}, 'restartPolicy.backoff.maxDelayMs', 'must be a whole number of milliseconds from 0 to 2147483647, not 2147483648'],
		[{backoff: {initialDelayMs: 500, maxDelayMs: 100}}, 'restartPolicy.backoff.maxDelayMs', '100 is less than initialDelayMs 500'],
		[{backoff: {factor: 0.5}}, 'restartPolicy.backoff.factor', 'must be a number from 1 to 100, not 0.5'],
		[{backoff: {factor: Number.NaN}}, 'restartPolicy.backoff.factor', 'must be a number from 1 to 100, not NaN'],
		[{backoff: {jitter: 2}}, 'restartPolicy.backoff.jitter', 'must be a number from 0 to 1, not 2'],
		[{resetAfterMs: '10'}, 'restartPolicy.resetAfterMs', 'must be a whole number of milliseconds from 0 to 2147483647, not string'],
		[{intensity: {maxRestarts: 1.5}}, 'restartPolicy.intensity.maxRestarts', 'must be an integer from 0 to 1000000, not 1.5'],
		[{intensity: {windowMs: 1e12}}, 'restartPolicy.intensity.windowMs', 'must be a whole number of milliseconds from 0 to 2147483647, not 1000000000000'],
		[{historySize: 0}, 'restartPolicy.historySize', 'must be an integer from 1 to 1000, not 0'],
	])('refuses %j, naming %s', (options, field, reason) => {
		expectInvalid(() => resolveRestartPolicy(options), field, reason, 'option');
	});
});

describe('judgeDeath', () => {
	const onFailure = resolveRestartPolicy({restart: 'on-failure'});

	test('on-failure restarts the documented failure reasons, a KILLED nobody asked for among them', () => {
		for (const reason of Object.values(DeathReason)) {
			const expected = DEFAULT_FAILURE_REASONS.includes(reason) ? 'restart' : 'final';
			expect([reason, judgeDeath(onFailure, {reason, initiator: 'vmm'})]).toEqual([reason, expected]);
		}

		expect(DEFAULT_FAILURE_REASONS).not.toContain('SHUTDOWN');
		expect(DEFAULT_FAILURE_REASONS).not.toContain('REBOOT');
	});

	test('a stop or kill the caller or supervisor asked for is final under every policy', () => {
		for (const restart of ['never', 'on-failure', 'always'] as const) {
			const policy = resolveRestartPolicy({restart, onReboot: 'restart'});
			for (const initiator of ['caller', 'supervisor'] as const) {
				expect(judgeDeath(policy, {reason: 'KILLED', initiator})).toBe('final');
				expect(judgeDeath(policy, {reason: 'SHUTDOWN', initiator})).toBe('final');
			}
		}
	});

	test('always restarts a clean power-off; a reboot follows onReboot', () => {
		expect(judgeDeath(resolveRestartPolicy({restart: 'always'}), {reason: 'SHUTDOWN', initiator: 'guest'})).toBe('restart');
		expect(judgeDeath(resolveRestartPolicy({restart: 'never', onReboot: 'restart'}), {reason: 'REBOOT', initiator: 'guest'})).toBe('reboot');
		expect(judgeDeath(resolveRestartPolicy({restart: 'always', onReboot: 'death'}), {reason: 'REBOOT', initiator: 'guest'})).toBe('restart');
		expect(judgeDeath(resolveRestartPolicy({restart: 'on-failure', onReboot: 'death'}), {reason: 'REBOOT', initiator: 'guest'})).toBe('final');
	});
});
