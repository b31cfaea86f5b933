/**
 * The payload's lifecycle, in order. Only forward moves are allowed (skipping ahead is one), as in
 * the reference's `PayloadState`.
 */
export const PAYLOAD_STATES = ['Starting', 'Started', 'Ready', 'Finished'] as const;

export type PayloadState = (typeof PAYLOAD_STATES)[number];

export function payloadStateRank(state: PayloadState): number {
	return PAYLOAD_STATES.indexOf(state);
}

export function isPayloadState(value: unknown): value is PayloadState {
	return typeof value === 'string' && (PAYLOAD_STATES as readonly string[]).includes(value);
}

export function isForwardMove(from: PayloadState, to: PayloadState): boolean {
	return payloadStateRank(to) > payloadStateRank(from);
}
