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
 * Kills every VM of `vms` still alive (`KILL`, initiator `supervisor`) and ends every restart
 * machine (`END`): the supervisor actor is gone, and its VM actors and restart machines are detached
 * children (see supervisor.machine.ts), which XState does not stop with it.
 */
export function endFleet(vms: ReadonlyMap<string, GuardedVm>): void {
	for (const {ref, restart} of vms.values()) {
		if (restart?.getSnapshot().status === 'active') {
			restart.send({type: 'END', initiator: 'supervisor'});
		}

		if (ref?.getSnapshot().status === 'active') {
			ref.send({type: 'KILL', initiator: 'supervisor'});
		}
	}
}

/**
 * Lives as long as the supervisor actor does, and ends its fleet (`endFleet`) when XState stops it:
 * when someone stops the supervisor actor by hand. A supervisor that shut down has no VM left by
 * then. XState does not stop a failed actor's children, so createSupervisor ends the fleet itself
 * when the actor fails.
 */
export const fleetGuard = fromCallback<{type: 'never'}, FleetGuardInput>(({input}) => () => {
	endFleet(input.vms);
});
