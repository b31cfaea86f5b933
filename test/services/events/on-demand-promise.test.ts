import {OnDemandPromise} from '../../../src/services/events/on-demand-promise.js';

describe('OnDemandPromise', () => {
	test('asked before it is settled, it resolves with the first value given', async () => {
		const lazy = new OnDemandPromise<string>();
		const promise = lazy.promise;
		expect(lazy.settled).toBe(false);
		expect(lazy.value).toBeUndefined();
		lazy.resolve('first');
		lazy.resolve('second');
		await expect(promise).resolves.toBe('first');
		expect(lazy.promise).toBe(promise);
		expect([lazy.settled, lazy.value]).toEqual([true, 'first']);
	});

	test('asked only after it is settled, it gives the value it was settled with', async () => {
		const lazy = new OnDemandPromise<number>();
		lazy.resolve(7);
		lazy.resolve(8);
		await expect(lazy.promise).resolves.toBe(7);
	});

	test('settled with undefined, it still counts as settled', async () => {
		const lazy = new OnDemandPromise<void>();
		lazy.resolve();
		expect(lazy.settled).toBe(true);
		await expect(lazy.promise).resolves.toBeUndefined();
	});
});
