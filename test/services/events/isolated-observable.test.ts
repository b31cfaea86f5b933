import {afterEach, beforeEach, describe, expect, test} from '@jest/globals';
import {config as rxjsConfig, filter, firstValueFrom, map, Subject, type Observable} from 'rxjs';
import {isolatedObservable} from '../../../src/services/events/isolated-observable.js';

let unhandled: unknown[];
let thrown: unknown[];
let subject: Subject<number>;
let torn: number;
let isolated: Observable<number>;

beforeEach(() => {
	unhandled = [];
	thrown = [];
	torn = 0;
	subject = new Subject<number>();
	// Where rxjs sends what a subscriber throws, from a timer; without a handler that ends the process.
	rxjsConfig.onUnhandledError = error => unhandled.push(error);
	isolated = isolatedObservable<number>(error => thrown.push(error), subscriber => {
		const subscription = subject.subscribe(subscriber);
		return () => {
			torn++;
			subscription.unsubscribe();
		};
	});
});

afterEach(() => {
	rxjsConfig.onUnhandledError = null;
});

/** rxjs reports unhandled errors from a zero timer: wait one out. */
async function reported(): Promise<void> {
	await new Promise(resolve => {
		setTimeout(resolve, 0);
	});
}

const bug = (message: string) => () => {
	throw new Error(message);
};

describe('isolatedObservable', () => {
	test('what a direct subscriber throws goes to onThrow; the next subscriber still gets the value', async () => {
		const seen: number[] = [];
		isolated.subscribe(bug('direct'));
		isolated.subscribe(value => seen.push(value));
		subject.next(1);
		subject.next(2);
		await reported();
		expect(seen).toEqual([1, 2]);
		expect(thrown).toEqual([new Error('direct'), new Error('direct')]);
		expect(unhandled).toEqual([]);
	});

	test('subscribers of what pipe returns, piped once, twice or through several operators, are isolated too', async () => {
		const seen: number[] = [];
		isolated.pipe(map(value => value * 10)).subscribe({next: bug('once')});
		isolated.pipe(filter(value => value > 1)).pipe(map(value => value + 1)).subscribe({next: bug('twice')});
		isolated.pipe(filter(value => value > 1), map(value => value * 100)).subscribe({next: bug('several')});
		isolated.pipe(map(value => value * 10)).subscribe(value => seen.push(value));
		subject.next(1);
		subject.next(2);
		await reported();
		expect(seen).toEqual([10, 20]);
		expect(thrown).toEqual(['once', 'once', 'twice', 'several'].map(message => new Error(message)));
		expect(unhandled).toEqual([]);
	});

	test('an operator that throws ends its own subscription, and the error goes to onThrow when nobody handles it', async () => {
		const errors: unknown[] = [];
		isolated.pipe(map(bug('operator'))).subscribe(() => undefined);
		isolated.pipe(map(bug('handled'))).subscribe({error: error => errors.push(error)});
		subject.next(1);
		subject.next(2);
		await reported();
		expect(thrown).toEqual([new Error('operator')]);
		expect(errors).toEqual([new Error('handled')]);
		expect(unhandled).toEqual([]);
	});

	test('a piped error or complete handler that throws, or an error nobody handles, goes to onThrow', async () => {
		isolated.pipe(map(value => value)).subscribe({error: bug('error handler')});
		isolated.pipe(map(value => value)).subscribe({complete: bug('complete handler')});
		subject.error(new Error('source failed'));
		const completing = new Subject<number>();
		isolatedObservable<number>(error => thrown.push(error), subscriber => completing.subscribe(subscriber))
			.pipe(map(value => value))
			.subscribe({complete: bug('complete handler')});
		completing.complete();
		await reported();
		// The second subscriber has no error handler: the source's error itself goes to onThrow.
		expect(thrown).toEqual([new Error('error handler'), new Error('source failed'), new Error('complete handler')]);
		expect(unhandled).toEqual([]);
	});

	test('firstValueFrom over a pipe resolves, and unsubscribing a piped subscriber tears the source down', async () => {
		const first = firstValueFrom(isolated.pipe(filter(value => value === 2)));
		subject.next(1);
		subject.next(2);
		await expect(first).resolves.toBe(2);
		expect(torn).toBe(1);
		const subscription = isolated.pipe(map(value => value), filter(() => true)).subscribe(() => undefined);
		subscription.unsubscribe();
		expect(torn).toBe(2);
		expect(subject.observed).toBe(false);
	});

	test('pipe with no operator returns the observable itself', () => {
		expect(isolated.pipe()).toBe(isolated);
	});
});
