/**
 * The control socket's wire format in the simulator: one JSON value per line over a Unix stream
 * socket (Node has no SOCK_SEQPACKET). Requests and responses are spelled as crosvm's serde spells
 * its `VmRequest` and `VmResponse`.
 */
export const CONTROL_REQUESTS = {
	stop: 'Exit',
	suspend: 'SuspendVcpus',
	resume: 'ResumeVcpus',
} as const;

export type ControlCommand = keyof typeof CONTROL_REQUESTS;

/** The answer to every request the VM carried out. */
export const CONTROL_OK = 'Ok';

export function encodeControlMessage(message: unknown): string {
	return `${JSON.stringify(message)}\n`;
}

/** crosvm's u64, as `balloon SIZE` takes it. */
export const MAX_U64 = 2n ** 64n - 1n;

/**
 * `BalloonControlCommand` as serde spells it inside `VmRequest::BalloonCommand`: `Adjust` carried
 * `wait_for_success` from 2023 on (vm_control/src/lib.rs at f1e797a68), not in 2022 (efdcf90a4).
 * Sizes beyond 2^53 lose precision in this simulator's JSON, which no test needs.
 */
export function balloonAdjustRequest(numBytes: number, waitForSuccess: boolean | undefined): unknown {
	return {BalloonCommand: {Adjust: {num_bytes: numBytes, ...(waitForSuccess === undefined ? {} : {wait_for_success: waitForSuccess})}}};
}

export const BALLOON_STATS_REQUEST = {BalloonCommand: {Stats: {}}};

/** `VmResponse::BalloonStats`, with `BalloonStats`' fields (common/balloon_control/src/lib.rs at f1e797a68). */
export interface BalloonStatsResponse {
	BalloonStats: {
		stats: Record<'swap_in' | 'swap_out' | 'major_faults' | 'minor_faults' | 'free_memory' | 'total_memory' | 'available_memory' | 'disk_caches' | 'hugetlb_allocations' | 'hugetlb_failures' | 'shared_memory' | 'unevictable_memory', number | null>;
		balloon_actual: number;
	};
}
