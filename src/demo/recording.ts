import type {InspectionEvent} from 'xstate';

/**
 * Where `--record FILE` plugs in: returns the inspector to hand to the supervisor (it then sees every
 * actor of the fleet) and a function that finishes the recording. Without a recorder this build
 * refuses the option rather than silently ignoring it.
 */
export interface DemoRecording {
	inspect: (event: InspectionEvent) => void;
	finish(): Promise<void>;
}

export async function startRecording(file: string): Promise<DemoRecording> {
	throw new Error(`--record ${file}: recording is not available in this build`);
}
