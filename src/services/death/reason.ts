/**
 * Why a VM died, named as in the reference's `DeathReason`, plus what Android added later
 * (`WATCHDOG_REBOOT`) and a reason of our own for crosvm's guest-panic exit (34), which Android
 * folds into `UNKNOWN`.
 */
export const DeathReason = {
	/** Waiting on the VMM failed: vmwarden lost track of the process. */
	INFRASTRUCTURE_ERROR: 'INFRASTRUCTURE_ERROR',
	/** The VMM died by a signal (SIGKILL from `kill()`, or anything else). */
	KILLED: 'KILLED',
	/** The VMM exited with a status that means nothing known. */
	UNKNOWN: 'UNKNOWN',
	/** The guest powered off, or the VMM stopped on request. */
	SHUTDOWN: 'SHUTDOWN',
	/** The VMM failed to start the VM (exit 1); Android later renamed it START_FAILED. */
	ERROR: 'ERROR',
	/** The guest asked for a reboot (exit 32). */
	REBOOT: 'REBOOT',
	/** The VM crashed: a vCPU or device process died (exit 33). */
	CRASH: 'CRASH',
	/** The guest kernel panicked (exit 34). */
	GUEST_PANIC: 'GUEST_PANIC',
	/** The vCPU-stall watchdog reset the VM (exit 36). */
	WATCHDOG_REBOOT: 'WATCHDOG_REBOOT',
	/** The payload did not start within the boot hang-up timeout, and the VM was killed. */
	HANGUP: 'HANGUP',
	PVM_FIRMWARE_PUBLIC_KEY_MISMATCH: 'PVM_FIRMWARE_PUBLIC_KEY_MISMATCH',
	PVM_FIRMWARE_INSTANCE_IMAGE_CHANGED: 'PVM_FIRMWARE_INSTANCE_IMAGE_CHANGED',
	BOOTLOADER_PUBLIC_KEY_MISMATCH: 'BOOTLOADER_PUBLIC_KEY_MISMATCH',
	BOOTLOADER_INSTANCE_IMAGE_CHANGED: 'BOOTLOADER_INSTANCE_IMAGE_CHANGED',
	MICRODROID_FAILED_TO_CONNECT_TO_VIRTUALIZATION_SERVICE: 'MICRODROID_FAILED_TO_CONNECT_TO_VIRTUALIZATION_SERVICE',
	MICRODROID_PAYLOAD_HAS_CHANGED: 'MICRODROID_PAYLOAD_HAS_CHANGED',
	MICRODROID_PAYLOAD_VERIFICATION_FAILED: 'MICRODROID_PAYLOAD_VERIFICATION_FAILED',
	MICRODROID_INVALID_PAYLOAD_CONFIG: 'MICRODROID_INVALID_PAYLOAD_CONFIG',
	MICRODROID_UNKNOWN_RUNTIME_ERROR: 'MICRODROID_UNKNOWN_RUNTIME_ERROR',
} as const;

export type DeathReason = (typeof DeathReason)[keyof typeof DeathReason];

/** The failure texts a guest may write to its failure UART that name a reason of their own. */
export const FAILURE_TEXT_REASONS: ReadonlySet<DeathReason> = new Set<DeathReason>([
	DeathReason.PVM_FIRMWARE_PUBLIC_KEY_MISMATCH,
	DeathReason.PVM_FIRMWARE_INSTANCE_IMAGE_CHANGED,
	DeathReason.BOOTLOADER_PUBLIC_KEY_MISMATCH,
	DeathReason.BOOTLOADER_INSTANCE_IMAGE_CHANGED,
	DeathReason.MICRODROID_FAILED_TO_CONNECT_TO_VIRTUALIZATION_SERVICE,
	DeathReason.MICRODROID_PAYLOAD_HAS_CHANGED,
	DeathReason.MICRODROID_PAYLOAD_VERIFICATION_FAILED,
	DeathReason.MICRODROID_INVALID_PAYLOAD_CONFIG,
	DeathReason.MICRODROID_UNKNOWN_RUNTIME_ERROR,
	DeathReason.HANGUP,
]);
