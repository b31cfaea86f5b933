import {InvalidConfigError} from '../../errors.js';

/**
 * An inclusive range of vsock context IDs the supervisor may hand out. 0, 1 and 2 are reserved by
 * vsock (hypervisor, local, host) and `0xFFFFFFFF` means "any", so a range lies within 3..0xFFFFFFFE.
 */
export interface CidRange {
	first: number;
	last: number;
}

/** The lowest CID a guest may have (0, 1 and 2 are vsock's own). */
export const LOWEST_GUEST_CID = 3;

/** The highest CID a guest may have (`0xFFFFFFFF` is `VMADDR_CID_ANY`). */
export const HIGHEST_GUEST_CID = 0xFF_FF_FF_FE;

/** Android's range: below 2048 is reserved for host services' vsock ports. */
export const DEFAULT_CID_RANGE: Readonly<CidRange> = Object.freeze({first: 2048, last: 65_535});

/** How many CIDs a range holds. */
export function cidRangeSize(range: CidRange): number {
	return range.last - range.first + 1;
}

/** Whether `value` is a CID a guest may have. */
export function isGuestCid(value: unknown): value is number {
	return typeof value === 'number' && Number.isInteger(value) && value >= LOWEST_GUEST_CID && value <= HIGHEST_GUEST_CID;
}

/** Returns `cid` when a guest may have it; else throws `InvalidConfigError` naming `field`. */
export function checkGuestCid(cid: unknown, field = 'cid'): number {
	if (!isGuestCid(cid)) {
		throw new InvalidConfigError(field, `must be an integer from ${LOWEST_GUEST_CID} to ${HIGHEST_GUEST_CID}: 0, 1 and 2 are the hypervisor, loopback and host, ${HIGHEST_GUEST_CID + 1} is VMADDR_CID_ANY`);
	}

	return cid;
}
