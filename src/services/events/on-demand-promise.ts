/**
 * A promise made only when someone first asks for it, settled by `resolve` before or after that.
 * A fleet holds several per VM (`died`, a supervised stop's end) and few callers ever ask: one nobody
 * asked for costs a small object, not a promise with its resolver.
 */
export class OnDemandPromise<T> {
	#settled: {value: T} | undefined;
	#promise: Promise<T> | undefined;
	#resolve: ((value: T) => void) | undefined;

	/** Whether `resolve` was called. */
	get settled(): boolean {
		return this.#settled !== undefined;
	}

	/** The value `resolve` was given, if it was called. */
	get value(): T | undefined {
		return this.#settled?.value;
	}

	get promise(): Promise<T> {
		if (this.#promise === undefined) {
			const settled = this.#settled;
			this.#promise = settled === undefined
				? new Promise<T>(resolve => {
					this.#resolve = resolve;
				})
				: Promise.resolve(settled.value);
		}

		return this.#promise;
	}

	/** Settles it with `value`; later calls change nothing. */
	resolve(value: T): void {
		if (this.#settled !== undefined) {
			return;
		}

		this.#settled = {value};
		this.#resolve?.(value);
		this.#resolve = undefined;
	}
}
