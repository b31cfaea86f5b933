import {fromCallback} from 'xstate';

/** The events a VM's timers send. */
export type VmTimerEvent = {type: 'HANGUP.DUE'} | {type: 'STOP.TIMEOUT'} | {type: 'STOP.RETRY'};

export interface TimerInput {
	/** When to fire; `undefined` is a timer that never fires (and costs nothing). */
	ms: number | undefined;
	event: VmTimerEvent;
}

/**
 * Sends `event` once after `ms` on the actor system's clock (a simulated one in tests), and clears
 * itself when its state is left. Not an XState `after`: those are the actor system's scheduled
 * events, and XState scans every one of them whenever any actor in the system stops. With a
 * supervisor's whole fleet in one system (a hang-up watch and a stop timeout per VM), that scan made
 * each death cost time in proportion to the fleet.
 */
export const vmTimer = fromCallback<{type: 'never'}, TimerInput, VmTimerEvent>(({input, sendBack, system}) => {
	if (input.ms === undefined) {
		return undefined;
	}

	const timeout: unknown = system._clock.setTimeout(() => {
		sendBack(input.event);
	}, input.ms);
	return () => {
		system._clock.clearTimeout(timeout);
	};
});
