import {Observable, Subscriber, type Observer, type Operator, type Subscription, type TeardownLogic} from 'rxjs';

/** What a subscriber passes to `subscribe`: an observer, or its callbacks. */
type ObserverOrNext<T> = Partial<Observer<T>> | ((value: T) => void) | null | undefined;

/**
 * An observable whose subscribers cannot throw into the host: rxjs reports an error thrown by a
 * subscriber's callback from a timer, where it becomes an uncaught exception that ends the process
 * (rxjs 7's `reportUnhandledError`). Here every callback a subscriber gives, to this observable or to
 * one piped from it, runs inside a try/catch, and what it throws goes to `onThrow`. So does an error
 * notification that the subscriber has no handler for. Subscribers that are rxjs `Subscriber`s
 * (operators, `firstValueFrom`) are rxjs's own and left as they are.
 */
export class IsolatedObservable<T> extends Observable<T> {
	constructor(private readonly onThrow: (error: unknown) => void, subscribe?: (this: Observable<T>, subscriber: Subscriber<T>) => TeardownLogic) {
		super(subscribe);
	}

	/** Operators (`pipe(filter(...))`) build on `lift`: the observables they return are isolated too. */
	override lift<R>(operator?: Operator<T, R>): Observable<R> {
		const observable = new IsolatedObservable<R>(this.onThrow);
		observable.source = this;
		observable.operator = operator;
		return observable;
	}

	override subscribe(observerOrNext?: ObserverOrNext<T>, error?: ((error: unknown) => void) | null, complete?: (() => void) | null): Subscription {
		if (observerOrNext instanceof Subscriber) {
			return super.subscribe(observerOrNext);
		}

		const observer: Partial<Observer<T>> = typeof observerOrNext === 'function' || observerOrNext === null || observerOrNext === undefined
			? {next: observerOrNext ?? undefined, error: error ?? undefined, complete: complete ?? undefined}
			: observerOrNext;
		return super.subscribe(isolate(observer, this.onThrow));
	}
}

/** The observer's callbacks, each called as a method of `observer` inside a try/catch. */
function isolate<T>(observer: Partial<Observer<T>>, onThrow: (error: unknown) => void): Observer<T> {
	const guarded = (call: () => void) => {
		try {
			call();
		} catch (error) {
			onThrow(error);
		}
	};

	return {
		next(value) {
			guarded(() => observer.next?.(value));
		},
		error(error: unknown) {
			guarded(() => {
				if (observer.error === undefined) {
					onThrow(error);
				} else {
					observer.error(error);
				}
			});
		},
		complete() {
			guarded(() => observer.complete?.());
		},
	};
}
