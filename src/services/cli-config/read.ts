import {constants} from 'node:fs';
import {open} from 'node:fs/promises';
import {ConfigFileError} from '../../errors.js';

/** The largest config file read: a real one is a few hundred bytes. */
export const MAX_CONFIG_FILE_BYTES = 1024 * 1024;

/**
 * Reads a JSON file of at most `maxBytes`, checking its size before reading it: opened without
 * waiting (a FIFO or a device never blocks the open), refused unless it is a regular file, read to
 * at most one byte over the bound, decoded as strict UTF-8 and parsed. Throws `ConfigFileError`.
 */
export async function readJsonFile(file: string, maxBytes = MAX_CONFIG_FILE_BYTES): Promise<unknown> {
	let handle;
	try {
		handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
	} catch (error) {
		throw new ConfigFileError(file, `cannot be opened: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, {cause: error});
	}

	let text: string;
	try {
		const stats = await handle.stat();
		if (!stats.isFile()) {
			throw new ConfigFileError(file, 'is not a regular file');
		}

		if (stats.size > maxBytes) {
			throw new ConfigFileError(file, `is ${stats.size} bytes: at most ${maxBytes}`);
		}

		// The file may grow after the stat: never read more than one byte past the bound.
		const buffer = Buffer.alloc(maxBytes + 1);
		let length = 0;
		for (;;) {
			const {bytesRead} = await handle.read(buffer, length, buffer.length - length, null);
			if (bytesRead === 0) {
				break;
			}

			length += bytesRead;
			if (length > maxBytes) {
				throw new ConfigFileError(file, `is more than ${maxBytes} bytes`);
			}
		}

		try {
			text = new TextDecoder('utf-8', {fatal: true, ignoreBOM: false}).decode(buffer.subarray(0, length));
		} catch (error) {
			throw new ConfigFileError(file, 'is not UTF-8 text', {cause: error});
		}
	} catch (error) {
		if (error instanceof ConfigFileError) {
			throw error;
		}

		throw new ConfigFileError(file, `cannot be read: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, {cause: error});
	} finally {
		await handle.close();
	}

	try {
		return JSON.parse(text) as unknown;
	} catch (error) {
		throw new ConfigFileError(file, `is not JSON: ${(error as Error).message}`, {cause: error});
	}
}
