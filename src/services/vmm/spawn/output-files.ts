import {closeSync, constants, fstatSync, openSync, readSync} from 'node:fs';

/*
 * The VMM's stderr and failure UART go to files the spawner process creates (./spawner-source.ts) and
 * the host reads back after the exit: one descriptor less per VM for as long as it runs, compared
 * with a pipe the host must keep open and drain.
 */

export interface OutputText {
	text: string;
	/** Whether the file held more than was read. */
	truncated: boolean;
}

/**
 * Reads at most `maxBytes` of a file the VMM wrote: from its start, or its last bytes (`tail`).
 * Bounded whatever the VMM or the guest wrote; a missing or unreadable file reads as empty.
 */
export function readOutputFile(path: string, maxBytes: number, tail = false): OutputText {
	let fd: number;
	try {
		fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
	} catch {
		return {text: '', truncated: false};
	}

	try {
		const {size} = fstatSync(fd);
		const length = Math.min(size, maxBytes);
		const buffer = Buffer.alloc(length);
		let read = 0;
		while (read < length) {
			const got = readSync(fd, buffer, read, length - read, (tail ? size - length : 0) + read);
			if (got === 0) {
				break;
			}

			read += got;
		}

		return {text: buffer.subarray(0, read).toString('utf8'), truncated: size > maxBytes};
	} catch {
		return {text: '', truncated: false};
	} finally {
		closeSync(fd);
	}
}
