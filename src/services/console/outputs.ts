import {Subject, type Observable} from 'rxjs';

/** The outputs vmwarden can capture. */
export type CapturedOutput = 'console' | 'log';

/**
 * Where a VM's captured lines go: one subject per output, completed when the capture ends. A subject
 * is made when first asked for (a subscriber can still be there before the launch, so from the first
 * line): a VM nobody watches, the usual one in a fleet, holds none.
 */
export class VmOutputs {
	readonly #subjects: Partial<Record<CapturedOutput, Subject<string>>> = {};

	lines$(output: CapturedOutput): Observable<string> {
		return this.#subject(output).asObservable();
	}

	next(output: CapturedOutput, line: string): void {
		// Without a subject, nobody subscribed: nobody would see the line.
		this.#subjects[output]?.next(line);
	}

	complete(output: CapturedOutput): void {
		// Made if need be, so that a later subscriber learns the capture ended.
		this.#subject(output).complete();
	}

	#subject(output: CapturedOutput): Subject<string> {
		this.#subjects[output] ??= new Subject<string>();
		return this.#subjects[output];
	}
}
