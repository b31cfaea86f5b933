import {DeathReason, FAILURE_TEXT_REASONS} from './reason.js';
import type {Initiator} from '../../types.js';

/** What is known once the VMM is gone, in the terms of the reference's `death_reason`. */
export interface DeathFacts {
	/** Set when waiting on the VMM failed (vmwarden lost track of it). */
	waitError: string | undefined;
	/** What the guest wrote to its failure channel (possibly empty). */
	failureText: string;
	/** Whether the boot hang-up watch fired and killed the VM. */
	hungUp: boolean;
	/** The driver's reading of the exit status (signal, 0, 1, 32, ...). */
	exitReason: DeathReason;
}

/** The failure text split at its first `|`: `REASON|free-form context`. */
export function splitFailureText(text: string): {failureReason: string | undefined; failureContext: string | undefined} {
	if (text.length === 0) {
		return {failureReason: undefined, failureContext: undefined};
	}

	const bar = text.indexOf('|');
	return bar === -1 ? {failureReason: text, failureContext: undefined} : {failureReason: text.slice(0, bar), failureContext: text.slice(bar + 1)};
}

function knownFailureReason(reason: string | undefined): DeathReason | undefined {
	return reason !== undefined && (FAILURE_TEXT_REASONS as ReadonlySet<string>).has(reason) ? (reason as DeathReason) : undefined;
}

/**
 * The reason for a death, in the order of issue 3 (and Android's newest version): a wait error, then a
 * failure text naming a known reason, then the hang-up watch, then the exit itself.
 */
export function decideDeathReason(facts: DeathFacts): DeathReason {
	if (facts.waitError !== undefined) {
		return DeathReason.INFRASTRUCTURE_ERROR;
	}

	const fromText = knownFailureReason(splitFailureText(facts.failureText).failureReason);
	if (fromText !== undefined) {
		return fromText;
	}

	if (facts.hungUp) {
		return DeathReason.HANGUP;
	}

	return facts.exitReason;
}

const VMM_REASONS: ReadonlySet<DeathReason> = new Set<DeathReason>([
	DeathReason.INFRASTRUCTURE_ERROR,
	DeathReason.KILLED,
	DeathReason.UNKNOWN,
	DeathReason.ERROR,
	DeathReason.CRASH,
]);

/**
 * Who caused a death: whoever asked for the stop or kill; otherwise the VMM for its own failures
 * (crash, start error, unknown status, an outside signal) and the guest for everything it decided
 * (power-off, reboot, panic, watchdog, hang-up, a failure text).
 */
export function deathInitiator(reason: DeathReason, requestedBy: Initiator | undefined): Initiator {
	if (requestedBy !== undefined) {
		return requestedBy;
	}

	return VMM_REASONS.has(reason) ? 'vmm' : 'guest';
}
