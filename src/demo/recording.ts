import type {InspectionEvent} from 'xstate';
import {createInspectionRecorder} from '../services/inspection/recorder.js';

/**
 * `--record FILE`: the inspector to hand to the supervisor (it then sees every actor of the fleet)
 * and the function that finishes the recording. Replay it with the inspector tools (docs/inspector.md).
 */
export interface DemoRecording {
	inspect: (event: InspectionEvent) => void;
	finish(): Promise<void>;
	/** Where it was written and how many inspection events it holds. */
	describe(): string;
}

export function startRecording(file: string): DemoRecording {
	let failure: Error | undefined;
	const recorder = createInspectionRecorder({
		file,
		onError(error) {
			failure = error;
		},
	});
	return {
		inspect: event => {
			recorder.next(event);
		},
		async finish() {
			recorder.close();
			return failure === undefined ? Promise.resolve() : Promise.reject(new Error(`recording to ${file} failed: ${failure.message}`));
		},
		describe: () => `${recorder.recorded} inspection events recorded to ${file}`,
	};
}
