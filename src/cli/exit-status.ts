import {DeathReason, type VmDeath} from '../index.js';

/**
 * How `vmwarden` exits (docs/cli.md, "Exit status"). A guest's own ending reuses crosvm's
 * `--extended-status` codes (crosvm's src/main.rs at commit f1e797a68), so a script that knows
 * crosvm knows these; vmwarden's own reasons sit above them.
 */
export const EXIT_STATUS = {
	/** The guest powered off (or the VMM stopped on a request other than Ctrl-C). */
	ok: 0,
	/** A client command the daemon refused (unknown CID, bad request), or a daemon that failed. */
	failed: 1,
	/** A bad command line or a bad config: nothing was started. */
	usage: 2,
	/** The VMM could not be spawned (missing, not executable). */
	spawnFailed: 3,
	/** The VMM exited 1: it failed to start the VM. */
	vmmError: 10,
	reboot: 32,
	crash: 33,
	guestPanic: 34,
	watchdogReboot: 36,
	/** The VMM exited with a status that means nothing known. */
	unknown: 37,
	/** The payload did not start within the boot hang-up timeout. */
	hangup: 40,
	/** The guest reported a failure reason of its own (PVM_*, BOOTLOADER_*, MICRODROID_*). */
	guestFailure: 41,
	/** vmwarden lost track of the VMM. */
	infrastructure: 42,
	/** Ctrl-C: the VM was stopped (or, on a second Ctrl-C, killed) as asked, as any interrupted command. */
	interrupted: 130,
	/** The VMM was killed by a signal vmwarden did not send: 128 + 9, as a shell reports SIGKILL. */
	killed: 137,
	/** No daemon listens on the socket (sysexits' EX_UNAVAILABLE). */
	unavailable: 69,
} as const;

const BY_REASON: Readonly<Record<DeathReason, number>> = {
	[DeathReason.SHUTDOWN]: EXIT_STATUS.ok,
	[DeathReason.ERROR]: EXIT_STATUS.vmmError,
	[DeathReason.REBOOT]: EXIT_STATUS.reboot,
	[DeathReason.CRASH]: EXIT_STATUS.crash,
	[DeathReason.GUEST_PANIC]: EXIT_STATUS.guestPanic,
	[DeathReason.WATCHDOG_REBOOT]: EXIT_STATUS.watchdogReboot,
	[DeathReason.UNKNOWN]: EXIT_STATUS.unknown,
	[DeathReason.HANGUP]: EXIT_STATUS.hangup,
	[DeathReason.INFRASTRUCTURE_ERROR]: EXIT_STATUS.infrastructure,
	[DeathReason.KILLED]: EXIT_STATUS.killed,
	[DeathReason.PVM_FIRMWARE_PUBLIC_KEY_MISMATCH]: EXIT_STATUS.guestFailure,
	[DeathReason.PVM_FIRMWARE_INSTANCE_IMAGE_CHANGED]: EXIT_STATUS.guestFailure,
	[DeathReason.BOOTLOADER_PUBLIC_KEY_MISMATCH]: EXIT_STATUS.guestFailure,
	[DeathReason.BOOTLOADER_INSTANCE_IMAGE_CHANGED]: EXIT_STATUS.guestFailure,
	[DeathReason.MICRODROID_FAILED_TO_CONNECT_TO_VIRTUALIZATION_SERVICE]: EXIT_STATUS.guestFailure,
	[DeathReason.MICRODROID_PAYLOAD_HAS_CHANGED]: EXIT_STATUS.guestFailure,
	[DeathReason.MICRODROID_PAYLOAD_VERIFICATION_FAILED]: EXIT_STATUS.guestFailure,
	[DeathReason.MICRODROID_INVALID_PAYLOAD_CONFIG]: EXIT_STATUS.guestFailure,
	[DeathReason.MICRODROID_UNKNOWN_RUNTIME_ERROR]: EXIT_STATUS.guestFailure,
};

/** `vmwarden run`'s exit status for a death: 130 when the user's Ctrl-C caused it, else by reason. */
export function exitStatusOf(death: VmDeath): number {
	return death.initiator === 'caller' ? EXIT_STATUS.interrupted : BY_REASON[death.reason];
}

/** A death in a few words for people: what the reason means. */
export const REASON_WORDS: Readonly<Record<DeathReason, string>> = {
	[DeathReason.SHUTDOWN]: 'the VM shut down',
	[DeathReason.ERROR]: 'the VMM failed to start the VM',
	[DeathReason.REBOOT]: 'the guest asked for a reboot',
	[DeathReason.CRASH]: 'the VM crashed',
	[DeathReason.GUEST_PANIC]: 'the guest kernel panicked',
	[DeathReason.WATCHDOG_REBOOT]: 'the vCPU-stall watchdog reset the VM',
	[DeathReason.UNKNOWN]: 'the VMM exited with an unknown status',
	[DeathReason.HANGUP]: 'the payload did not start in time: the VM was killed',
	[DeathReason.INFRASTRUCTURE_ERROR]: 'vmwarden lost track of the VMM',
	[DeathReason.KILLED]: 'the VMM was killed',
	[DeathReason.PVM_FIRMWARE_PUBLIC_KEY_MISMATCH]: 'the pVM firmware\'s public key did not match',
	[DeathReason.PVM_FIRMWARE_INSTANCE_IMAGE_CHANGED]: 'the pVM firmware\'s instance image changed',
	[DeathReason.BOOTLOADER_PUBLIC_KEY_MISMATCH]: 'the bootloader\'s public key did not match',
	[DeathReason.BOOTLOADER_INSTANCE_IMAGE_CHANGED]: 'the bootloader\'s instance image changed',
	[DeathReason.MICRODROID_FAILED_TO_CONNECT_TO_VIRTUALIZATION_SERVICE]: 'Microdroid could not reach the virtualization service',
	[DeathReason.MICRODROID_PAYLOAD_HAS_CHANGED]: 'the Microdroid payload changed',
	[DeathReason.MICRODROID_PAYLOAD_VERIFICATION_FAILED]: 'the Microdroid payload failed verification',
	[DeathReason.MICRODROID_INVALID_PAYLOAD_CONFIG]: 'the Microdroid payload config is invalid',
	[DeathReason.MICRODROID_UNKNOWN_RUNTIME_ERROR]: 'Microdroid hit an unknown runtime error',
};
