import {Subject, type Observable} from 'rxjs';
import {isolatedObservable} from './isolated-observable.js';

export interface EventChannel<T> {
	/** Queues `event`; queued events go out in order from a microtask. */
	publish(event: T): void;
	/** Delivers what is queued, then completes the observable. */
	close(): void;
	readonly events$: Observable<T>;
}

/**
 * Events delivered in order from a microtask, never from inside an actor's transition, to
 * subscribers that cannot throw into the host (see `isolatedObservable`): what a subscriber throws
 * goes to `onThrow`, and the next subscriber still gets the event.
 */
export function createEventChannel<T>(onThrow: (error: unknown) => void): EventChannel<T> {
	const subject = new Subject<T>();
	const queued: T[] = [];
	let flushScheduled = false;
	const flush = () => {
		flushScheduled = false;
		for (const event of queued.splice(0)) {
			subject.next(event);
		}
	};

	return {
		publish(event) {
			queued.push(event);
			if (!flushScheduled) {
				flushScheduled = true;
				queueMicrotask(flush);
			}
		},
		close() {
			flush();
			subject.complete();
		},
		events$: isolatedObservable<T>(onThrow, subscriber => subject.subscribe(subscriber)),
	};
}
