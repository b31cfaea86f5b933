import {ValueError} from './failures.js';

/** Unsigned integer widths crosvm's flags use. */
export type UnsignedBits = 8 | 16 | 32 | 64;

function checkRange(value: bigint, bits: UnsignedBits, tooLarge: string): number {
	if (value >= 1n << BigInt(bits)) {
		throw new ValueError(tooLarge);
	}

	// Every value the simulator acts on fits; a larger u64 only needs to be accepted.
	return Number(value);
}

/**
 * Rust's `u64::from_str` (and u8, u16, u32): ASCII digits with an optional `+`, with Rust's error
 * texts. Used by plain options (`--cid`, `--swiotlb`) and by the 2022 build's `--mem`/`--cpus`.
 */
export function parseRustUnsigned(text: string, bits: UnsignedBits): number {
	if (text === '' || text === '+') {
		throw new ValueError('cannot parse integer from empty string');
	}

	if (!/^\+?\d+$/.test(text)) {
		throw new ValueError('invalid digit found in string');
	}

	return checkRange(BigInt(text.replace('+', '')), bits, 'number too large to fit in target type');
}
