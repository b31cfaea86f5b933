import {fromCallback} from 'xstate';

/** What the guard needs of a held VM: its current life and its restart machine, if any. */
export interface GuardedVm {
	ref: {send(event: {type: 'KILL'; initiator: 'supervisor'}): void; getSnapshot(): {status: string}} | undefined;
	restart: {send(event: {type: 'END'; initiator: 'supervisor'}): void; getSnapshot(): {status: string}} | undefined;
}

export interface FleetGuardInput {
	/** The supervisor's VMs, a map it updates in place: read when the guard is stopped. */
	vms: ReadonlyMap<string, GuardedVm>;
}

/**
 * Lives as long as the supervisor actor does, and ends its fleet with it. The VM actors and restart
 * machines are detached children (not in the supervisor snapshot's `children`, see
 * supervisor.machine.ts), so XState does not stop them when the supervisor actor is stopped by hand
 * or fails; XState does stop this guard then, and the guard kills every VM still alive and ends
 * every restart machine, so no VMM outlives its supervisor. A supervisor that shut down has no VM
 * left by then.
 */
export const fleetGuard = fromCallback<{type: 'never'}, FleetGuardInput>(({input}) => () => {
	for (const {ref, restart} of input.vms.values()) {
		if (restart?.getSnapshot().status === 'active') {
			restart.send({type: 'END', initiator: 'supervisor'});
		}

		if (ref?.getSnapshot().status === 'active') {
			ref.send({type: 'KILL', initiator: 'supervisor'});
		}
	}
});
