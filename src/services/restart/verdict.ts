import {DeathReason} from '../death/reason.js';
import type {VmDeath} from '../../types.js';
import type {RestartPolicy} from './policy.js';

/**
 * What a death means under a policy: `restart` after the backoff, `reboot` at once (libvirt's
 * `on_reboot=restart`), or `final` (the VM stays dead).
 */
export type DeathVerdict = 'restart' | 'reboot' | 'final';

/**
 * Decides a death: a stop or kill that the caller or supervisor asked for is always final (the
 * death's `initiator` says who asked); a reboot follows `onReboot`; the rest follows `restart`.
 */
export function judgeDeath(policy: RestartPolicy, death: Pick<VmDeath, 'reason' | 'initiator'>): DeathVerdict {
	if (death.initiator === 'caller' || death.initiator === 'supervisor') {
		return 'final';
	}

	if (death.reason === DeathReason.REBOOT && policy.onReboot === 'restart') {
		return 'reboot';
	}

	switch (policy.restart) {
		case 'never': {
			return 'final';
		}

		case 'always': {
			return 'restart';
		}

		case 'on-failure': {
			return policy.failureReasons.includes(death.reason) ? 'restart' : 'final';
		}
	}
}
