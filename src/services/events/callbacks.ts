/**
 * Callbacks registered one by one, each removable, all called with one value and each guarded: one
 * that throws is reported and the others still run. The set is made with the first callback: a
 * fleet holds several of these per VM, and few ever get one.
 */
export class Callbacks<T> {
	#set: Set<(value: T) => void> | undefined;

	/** Registers `callback`; the function returned removes it. */
	add(callback: (value: T) => void): () => void {
		this.#set ??= new Set();
		const set = this.#set;
		set.add(callback);
		return () => {
			set.delete(callback);
		};
	}

	/**
	 * Calls every callback registered now with `value`, in order; `onError` gets what one throws.
	 * With `once`, they are all removed first (a callback added meanwhile waits for the next call).
	 */
	call(value: T, onError: (error: unknown) => void, {once = false}: {once?: boolean} = {}): void {
		const callbacks = [...this.#set ?? []];
		if (once) {
			this.#set = undefined;
		}

		for (const callback of callbacks) {
			try {
				callback(value);
			} catch (error) {
				onError(error);
			}
		}
	}
}
