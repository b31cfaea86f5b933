import {isObservable, Observable, Subscriber, type Observer, type Subscription, type TeardownLogic, type UnaryFunction} from 'rxjs';

/** What a subscriber passes to `subscribe`: an observer, or its callbacks. */
type ObserverOrNext<T> = Partial<Observer<T>> | ((value: T) => void) | null | undefined;

/**
 * See `isolatedObservable`. Not exported: its own `pipe` is typed loosely, so callers see it only as
 * an `Observable<T>`, whose overloads of `pipe` type the chain.
 */
class IsolatedObservable<T> extends Observable<T> {
	constructor(private readonly onThrow: (error: unknown) => void, subscribe: (subscriber: Subscriber<T>) => TeardownLogic) {
		super(subscribe);
	}

	/**
	 * What `pipe(filter(...))` returns is isolated too, and so is what that one's `pipe` returns.
	 * Not by overriding `lift`, which rxjs 7's operators call: rxjs deprecates it as internal, and
	 * rxjs 8's operators no longer call it. An operator applied by hand (`filter(f)(events$)`)
	 * returns a plain observable.
	 */
	override pipe<R>(...operations: Array<UnaryFunction<never, unknown>>): Observable<R> {
		// rxjs's own `pipe` is this reduce (its `pipeFromArray`).
		const piped = operations.reduce<unknown>((source, operation) => (operation as UnaryFunction<unknown, unknown>)(source), this);
		if (piped === this || !isObservable(piped)) {
			return piped as Observable<R>;
		}

		return new IsolatedObservable<R>(this.onThrow, subscriber => (piped as Observable<R>).subscribe(subscriber));
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

/**
 * An observable whose subscribers cannot throw into the host: rxjs reports an error thrown by a
 * subscriber's callback from a timer, where it becomes an uncaught exception that ends the process
 * (rxjs 7's `reportUnhandledError`). Here every callback a subscriber gives, to this observable or to
 * one piped from it, runs inside a try/catch, and what it throws goes to `onThrow`. So does an error
 * notification that the subscriber has no handler for. Subscribers that are rxjs `Subscriber`s
 * (operators, `firstValueFrom`) are rxjs's own and left as they are.
 */
export function isolatedObservable<T>(onThrow: (error: unknown) => void, subscribe: (subscriber: Subscriber<T>) => TeardownLogic): Observable<T> {
	return new IsolatedObservable(onThrow, subscribe);
}

/**
 * The observer's callbacks, each called as a method of `observer` inside a try/catch. An object
 * with shared methods rather than closures: a fleet's handles hold a subscription or two per VM.
 */
function isolate<T>(observer: Partial<Observer<T>>, onThrow: (error: unknown) => void): Observer<T> {
	return new IsolatedObserver(observer, onThrow);
}

class IsolatedObserver<T> implements Observer<T> {
	constructor(private readonly observer: Partial<Observer<T>>, private readonly onThrow: (error: unknown) => void) {}

	next(value: T): void {
		try {
			this.observer.next?.(value);
		} catch (error) {
			this.onThrow(error);
		}
	}

	error(error: unknown): void {
		try {
			if (this.observer.error === undefined) {
				this.onThrow(error);
			} else {
				this.observer.error(error);
			}
		} catch (thrown) {
			this.onThrow(thrown);
		}
	}

	complete(): void {
		try {
			this.observer.complete?.();
		} catch (error) {
			this.onThrow(error);
		}
	}
}
