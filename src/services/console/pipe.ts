import {constants, openSync, closeSync} from 'node:fs';
import {open, type FileHandle} from 'node:fs/promises';
import {Socket} from 'node:net';
import path from 'node:path';
import {howCommandEnded, runCommand} from '../vmm/spawn/command.js';

/** A named pipe in the VM's private directory: vmwarden reads one end, the VMM inherits the other. */
export interface CapturePipe {
	/** The read end, non-blocking, read by the event loop (never a thread-pool read). */
	reader: Socket;
	/** The write end, blocking as a file would be for the VMM: handed to it, then closed here. */
	writer: FileHandle;
}

/** How long `mkfifo` may take. */
const MKFIFO_TIMEOUT_MS = 10_000;

/**
 * Makes a FIFO `name` in `tempDir` (0700, the VM's own) and opens both ends. Node has no `pipe(2)`
 * or `mkfifo(3)`: `mkfifo` (coreutils, found on the host's PATH) makes it, once per captured output
 * of a VM, run by the spawner process as every other command is (the host never forks). The read
 * end is opened first and non-blocking, so opening the write end does not wait for a reader; the
 * write end stays blocking, as crosvm's and QEMU's writes to a file are.
 */
export async function openCapturePipe(tempDir: string, name: string): Promise<CapturePipe> {
	const fifo = path.join(tempDir, name);
	const made = await runCommand('mkfifo', ['-m', '0600', '--', fifo], {environment: {PATH: process.env['PATH'] ?? '/usr/bin:/bin'}, timeoutMs: MKFIFO_TIMEOUT_MS});
	if (made.code !== 0) {
		const how = made.failed ?? howCommandEnded(made, MKFIFO_TIMEOUT_MS);
		throw new Error(`mkfifo ${fifo} ${how}${made.stderr.trim() ? `: ${made.stderr.trim()}` : ''}`);
	}

	const readFd = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW);
	let writer: FileHandle;
	try {
		writer = await open(fifo, constants.O_WRONLY | constants.O_NOFOLLOW);
	} catch (error) {
		closeSync(readFd);
		throw error;
	}

	return {reader: new Socket({fd: readFd, readable: true, writable: false}), writer};
}
