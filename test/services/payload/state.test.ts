import {describe, expect, test} from '@jest/globals';
import {isForwardMove, isPayloadState, PAYLOAD_STATES, payloadStateRank} from '../../../src/services/payload/state.js';

describe('payload states', () => {
	test('ranked in lifecycle order', () => {
		expect(PAYLOAD_STATES.map(payloadStateRank)).toEqual([0, 1, 2, 3]);
		expect(PAYLOAD_STATES).toEqual(['Starting', 'Started', 'Ready', 'Finished']);
	});

	test('only a move to a later state is forward; skipping ahead is one', () => {
		expect(isForwardMove('Starting', 'Finished')).toBe(true);
		expect(isForwardMove('Started', 'Ready')).toBe(true);
		expect(isForwardMove('Ready', 'Ready')).toBe(false);
		expect(isForwardMove('Ready', 'Started')).toBe(false);
	});

	test.each([['Started', true], ['Finished', true], ['started', false], ['', false], [1, false], [undefined, false], [['Ready'], false]])('%p is a payload state: %p', (value, expected) => {
		expect(isPayloadState(value)).toBe(expected);
	});
});
