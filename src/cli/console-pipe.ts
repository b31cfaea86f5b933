import {createReadStream} from 'node:fs';
import {mkdtemp, open, rm, type FileHandle} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {finished} from 'node:stream/promises';
import {execa} from 'execa';

/** The guest console, copied to one of this process's streams. */
export interface ConsolePipe {
	/** The write end, for the config's `consoleOutput`: the VMM inherits it. */
	handle: FileHandle;
	/** Closes our write end and resolves once everything the VMM wrote is copied out. */
	close(): Promise<void>;
}

/**
 * A FIFO in a private directory whose read end is copied to `output`. The VMM cannot be handed
 * our own stdout (vmwarden never hands over descriptors 0 to 2), and re-opening `/dev/stdout`
 * fails when it is a socket (a child of Node, systemd's journal): a FIFO works whatever stdout is.
 */
export async function openConsolePipe(output: NodeJS.WritableStream): Promise<ConsolePipe> {
	const directory = await mkdtemp(join(tmpdir(), 'vmwarden-console-'));
	const fifo = join(directory, 'console');
	try {
		await execa('mkfifo', ['-m', '600', fifo]);
		// Each open of a FIFO waits for the other end (in libuv's pool, not on the event loop).
		const reader = createReadStream(fifo);
		const [handle] = await Promise.all([open(fifo, 'a'), new Promise(resolve => reader.once('open', resolve))]);
		reader.pipe(output, {end: false});
		// Once both ends are open, the name is no longer needed.
		await rm(directory, {recursive: true, force: true});
		return {
			handle,
			async close() {
				await handle.close();
				await finished(reader).catch(() => undefined);
			},
		};
	} catch (error) {
		await rm(directory, {recursive: true, force: true});
		throw error;
	}
}
