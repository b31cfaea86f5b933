import type winston from 'winston';

export interface RateLimitedLogOptions {
	/** What is counted, in the plural, for the summaries: `malformed payload lines`. */
	what: string;
	/** How many are logged one by one before only counts are. */
	burst: number;
	/** How often a count of the ones not logged is. */
	intervalMs: number;
	/** The clock; `Date.now` unless a test drives it. */
	now?: () => number;
}

/**
 * Logs the first few of a kind of event one by one, then only counts: one line when it starts
 * counting, one per interval with the count since the last, and a final one on `close()`. A guest
 * that floods its host with bad output costs the host's log a bounded number of lines.
 * Counting is checked on each event, so the log needs no timer and nothing to stop.
 */
export class RateLimitedLog {
	readonly #logger: winston.Logger;
	readonly #options: Required<RateLimitedLogOptions>;
	#seen = 0;
	#uncounted = 0;
	#lastSummary: number;
	#closed = false;

	constructor(logger: winston.Logger, options: RateLimitedLogOptions) {
		this.#logger = logger;
		this.#options = {...options, now: options.now ?? Date.now};
		this.#lastSummary = this.#options.now();
	}

	/** How many events were noted in all. */
	get seen(): number {
		return this.#seen;
	}

	/** Notes one event; `message` is only built when it is logged. */
	note(message: () => string): void {
		if (this.#closed) {
			return;
		}

		this.#seen++;
		const {burst, intervalMs, what, now} = this.#options;
		if (this.#seen <= burst) {
			this.#logger.warn(message());
			return;
		}

		this.#uncounted++;
		if (this.#seen === burst + 1) {
			this.#lastSummary = now();
			this.#logger.warn(`More ${what}: from now on counted, not logged one by one`);
		} else if (now() - this.#lastSummary >= intervalMs) {
			this.#summarize();
		}
	}

	/** Logs the count still unreported and the total, once; notes after this are ignored. */
	close(): void {
		if (this.#closed) {
			return;
		}

		this.#closed = true;
		if (this.#seen > this.#options.burst) {
			this.#summarize();
			this.#logger.warn(`${this.#seen} ${this.#options.what} in all`);
		}
	}

	#summarize(): void {
		if (this.#uncounted > 0) {
			const seconds = Math.max(1, Math.round((this.#options.now() - this.#lastSummary) / 1000));
			this.#logger.warn(`${this.#uncounted} more ${this.#options.what} in the last ${seconds} s`);
		}

		this.#uncounted = 0;
		this.#lastSummary = this.#options.now();
	}
}
