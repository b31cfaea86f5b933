import {describe, expect, test} from '@jest/globals';
import {DeathReason, FAILURE_TEXT_REASONS} from '../../../src/services/death/reason.js';
import {deathInitiator, decideDeathReason, splitFailureText, type DeathFacts} from '../../../src/services/death/decide.js';

const facts = (overrides: Partial<DeathFacts>): DeathFacts => ({waitError: undefined, failureText: '', hungUp: false, exitReason: DeathReason.SHUTDOWN, ...overrides});

describe('decideDeathReason: wait error, then failure text, then hang-up, then the exit', () => {
	test('a wait error wins over everything', () => {
		expect(decideDeathReason(facts({waitError: 'ECHILD', failureText: 'MICRODROID_PAYLOAD_HAS_CHANGED', hungUp: true, exitReason: DeathReason.CRASH}))).toBe(DeathReason.INFRASTRUCTURE_ERROR);
	});

	test.each([...FAILURE_TEXT_REASONS])('failure text %s names the reason, with or without context, over a hang-up', reason => {
		expect(decideDeathReason(facts({failureText: reason, hungUp: true, exitReason: DeathReason.KILLED}))).toBe(reason);
		expect(decideDeathReason(facts({failureText: `${reason}|detail | more`, exitReason: DeathReason.CRASH}))).toBe(reason);
	});

	test('an unknown failure text falls through to the hang-up, then to the exit', () => {
		expect(decideDeathReason(facts({failureText: 'SOMETHING_ELSE|x', hungUp: true, exitReason: DeathReason.KILLED}))).toBe(DeathReason.HANGUP);
		expect(decideDeathReason(facts({failureText: 'SOMETHING_ELSE', exitReason: DeathReason.REBOOT}))).toBe(DeathReason.REBOOT);
	});

	test('a reason must match exactly: no prefix, no case folding, no trailing newline', () => {
		expect(decideDeathReason(facts({failureText: 'MICRODROID_PAYLOAD_HAS_CHANGED\n', exitReason: DeathReason.CRASH}))).toBe(DeathReason.CRASH);
		expect(decideDeathReason(facts({failureText: 'microdroid_payload_has_changed', exitReason: DeathReason.CRASH}))).toBe(DeathReason.CRASH);
		expect(decideDeathReason(facts({failureText: 'SHUTDOWN', exitReason: DeathReason.CRASH}))).toBe(DeathReason.CRASH);
	});

	test('without anything else the exit decides', () => {
		expect(decideDeathReason(facts({exitReason: DeathReason.GUEST_PANIC}))).toBe(DeathReason.GUEST_PANIC);
	});
});

describe('splitFailureText', () => {
	test('splits at the first bar only', () => {
		expect(splitFailureText('A|b|c')).toEqual({failureReason: 'A', failureContext: 'b|c'});
		expect(splitFailureText('A|')).toEqual({failureReason: 'A', failureContext: ''});
		expect(splitFailureText('A')).toEqual({failureReason: 'A', failureContext: undefined});
		expect(splitFailureText('')).toEqual({failureReason: undefined, failureContext: undefined});
	});

	test('a VM death always carries both fields, set or not', () => {
		expect(Object.keys(splitFailureText(''))).toEqual(['failureReason', 'failureContext']);
		expect(Object.keys(splitFailureText('A'))).toEqual(['failureReason', 'failureContext']);
	});
});

describe('deathInitiator', () => {
	test('whoever asked for the end, else the VMM for its own failures and the guest for its decisions', () => {
		expect(deathInitiator(DeathReason.KILLED, 'supervisor')).toBe('supervisor');
		expect(deathInitiator(DeathReason.SHUTDOWN, 'caller')).toBe('caller');
		expect(deathInitiator(DeathReason.CRASH, undefined)).toBe('vmm');
		expect(deathInitiator(DeathReason.KILLED, undefined)).toBe('vmm');
		expect(deathInitiator(DeathReason.REBOOT, undefined)).toBe('guest');
		expect(deathInitiator(DeathReason.HANGUP, undefined)).toBe('guest');
	});
});
