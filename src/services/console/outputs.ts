import {Subject, type Observable} from 'rxjs';

/** The outputs vmwarden can capture. */
export type CapturedOutput = 'console' | 'log';

/**
 * Where a VM's captured lines go: one subject per output, made with the VM (before it is launched,
 * so a subscriber can be there from the first line) and completed when the capture ends.
 */
export class VmOutputs {
	readonly #subjects: Record<CapturedOutput, Subject<string>> = {console: new Subject<string>(), log: new Subject<string>()};

	lines$(output: CapturedOutput): Observable<string> {
		return this.#subjects[output].asObservable();
	}

	next(output: CapturedOutput, line: string): void {
		this.#subjects[output].next(line);
	}

	complete(output: CapturedOutput): void {
		this.#subjects[output].complete();
	}
}
