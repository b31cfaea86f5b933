import {describe, expect, test} from '@jest/globals';
import {VmOutputs} from '../../../src/services/console/outputs.js';

describe('VmOutputs', () => {
	test('a subscriber gets the lines from its subscription on, and the end', () => {
		const outputs = new VmOutputs();
		outputs.next('console', 'before anyone listened');
		const seen: string[] = [];
		let completed = false;
		outputs.lines$('console').subscribe({next: line => seen.push(line), complete: () => completed = true});
		outputs.next('console', 'one');
		outputs.next('log', 'another output');
		outputs.next('console', 'two');
		outputs.complete('console');
		expect({seen, completed}).toEqual({seen: ['one', 'two'], completed: true});
	});

	test('a subscriber after the end of a capture nobody watched is completed at once', () => {
		const outputs = new VmOutputs();
		outputs.next('log', 'unseen');
		outputs.complete('log');
		const seen: string[] = [];
		let completed = false;
		outputs.lines$('log').subscribe({next: line => seen.push(line), complete: () => completed = true});
		expect({seen, completed}).toEqual({seen: [], completed: true});
	});
});
