import type {StateValue} from 'xstate';

/** The state of one region of Running (`process`, `payload`, `execution`, ...) in a VM state value. */
export function runningRegion(value: StateValue, region: string): string | undefined {
	if (typeof value !== 'object') {
		return undefined;
	}

	const running = value['Running'];
	if (typeof running !== 'object' || running === undefined) {
		return undefined;
	}

	const state = running[region];
	return typeof state === 'string' ? state : undefined;
}

/** Whether a VM state value is the launch (NotStarted's `launching`): START was sent. */
export function isLaunching(value: StateValue): boolean {
	return typeof value === 'object' && value['NotStarted'] === 'launching';
}

/** The top-level state of a VM state value. */
export function topState(value: StateValue): string {
	return typeof value === 'string' ? value : Object.keys(value)[0] ?? 'unknown';
}
