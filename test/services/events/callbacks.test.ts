import {Callbacks} from '../../../src/services/events/callbacks.js';

describe('Callbacks', () => {
	test('calls each registered callback in order, a removed one not, and reports a throwing one without stopping', () => {
		const callbacks = new Callbacks<number>();
		const calls: string[] = [];
		const errors: unknown[] = [];
		callbacks.add(value => calls.push(`a${value}`));
		const remove = callbacks.add(value => calls.push(`b${value}`));
		callbacks.add(() => {
			throw new Error('boom');
		});
		callbacks.add(value => calls.push(`d${value}`));
		remove();
		callbacks.call(1, error => errors.push(error));
		callbacks.call(2, error => errors.push(error));
		expect(calls).toEqual(['a1', 'd1', 'a2', 'd2']);
		expect(errors.map(error => String(error))).toEqual(['Error: boom', 'Error: boom']);
	});

	test('once: every callback is called a single time; one added meanwhile waits for the next call', () => {
		const callbacks = new Callbacks<string>();
		const calls: string[] = [];
		callbacks.add(value => {
			calls.push(`first ${value}`);
			callbacks.add(later => calls.push(`late ${later}`));
		});
		callbacks.call('x', () => undefined, {once: true});
		callbacks.call('y', () => undefined, {once: true});
		callbacks.call('z', () => undefined, {once: true});
		expect(calls).toEqual(['first x', 'late y']);
	});
});
