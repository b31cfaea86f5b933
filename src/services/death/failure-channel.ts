import type {Readable} from 'node:stream';
import {streamSettled} from '../vmm/stream-settled.js';

/** The most of the failure text vmwarden keeps, as Android does. */
export const MAX_FAILURE_TEXT_BYTES = 50_000;

/**
 * How long the reader waits for the end of the failure channel once the VMM has exited. A process
 * that inherited the write end (a grandchild of the VMM) can keep it open forever; after this grace
 * the reader takes what it has and closes its end.
 */
export const FAILURE_CHANNEL_GRACE_MS = 200;

export interface FailureText {
	text: string;
	/** Whether the guest wrote more than `maxBytes` (the rest was drained and dropped). */
	truncated: boolean;
}

export interface FailureChannelOptions {
	maxBytes?: number;
	graceMs?: number;
}

/**
 * How many of `bytes` end on a whole UTF-8 character: the cap can cut a character in two, and
 * half a character would read as U+FFFD, which the guest never wrote.
 */
function wholeCharacters(bytes: Uint8Array): number {
	let start = bytes.length - 1;
	// Back over continuation bytes to the lead byte of the last character (if there is one).
	while (start > 0 && (bytes[start]! & 0xC0) === 0x80) {
		start--;
	}

	const lead = bytes[start] ?? 0;
	const length = lead >= 0xF0 ? 4 : (lead >= 0xE0 ? 3 : (lead >= 0xC0 ? 2 : 1));
	return bytes.length - start < length ? start : bytes.length;
}

/**
 * Reads the failure channel from the start without ever blocking the VMM (the channel is drained
 * even past the cap) and finishes at its end, or `graceMs` after `exited` settles, whichever is
 * first. Never rejects: a read error ends the text where it stands.
 */
export async function readFailureChannel(stream: Readable, exited: Promise<unknown>, options: FailureChannelOptions = {}): Promise<FailureText> {
	const maxBytes = options.maxBytes ?? MAX_FAILURE_TEXT_BYTES;
	const graceMs = options.graceMs ?? FAILURE_CHANNEL_GRACE_MS;
	// The cap is applied as the bytes arrive: past it, a chunk is counted and dropped, never kept.
	const chunks: Uint8Array[] = [];
	let kept = 0;
	let truncated = false;

	stream.on('data', (chunk: Uint8Array | string) => {
		const bytes = typeof chunk === 'string' ? new TextEncoder().encode(chunk) : chunk;
		const room = maxBytes - kept;
		if (bytes.length > room) {
			truncated = true;
		}

		if (room > 0) {
			const part = bytes.subarray(0, room);
			chunks.push(part);
			kept += part.length;
		}
	});

	await streamSettled(stream, exited, graceMs);

	// Whatever holds the write end now writes into nothing.
	stream.destroy();
	const bytes = Buffer.concat(chunks);
	return {text: new TextDecoder().decode(truncated ? bytes.subarray(0, wholeCharacters(bytes)) : bytes), truncated};
}
