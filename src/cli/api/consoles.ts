import {Subject, type Observable} from 'rxjs';
import {LineTail} from '../../services/console/lines.js';

/** What the daemon keeps of one VM's captured console, for `GET /v1/vms/{cid}/console`. */
export interface KeptConsole {
	/** The last lines (the library's console tail bounds: 50 lines, 16 KiB), oldest first. */
	tail(): string[];
	/** Each line from subscription on; completes when the VM's console ends (at once once it has). */
	readonly lines$: Observable<string>;
	/** Stops keeping it: the lines$ subscribers see it complete. Idempotent. */
	dispose(): void;
}

/**
 * Keeps a VM's console from before its start: its tail, and its lines for every client that asks.
 * One subscription to the VM, whatever the number of clients; the tail and the live lines come from
 * the same subscription, so a client that takes the tail and then subscribes, in one turn, misses
 * no line and sees none twice.
 */
export function keepConsole(console$: Observable<string>): KeptConsole {
	const kept = new LineTail();
	const lines = new Subject<string>();
	const end = () => {
		lines.complete();
	};

	const subscription = console$.subscribe({
		next(line) {
			kept.push(line);
			lines.next(line);
		},
		complete: end,
		error: end,
	});
	return {
		tail: () => kept.lines(),
		lines$: lines.asObservable(),
		dispose() {
			subscription.unsubscribe();
			end();
		},
	};
}
