import type {Readable} from 'node:stream';

/**
 * Resolves when `stream` ended, closed or failed, or `graceMs` after `after` settled, whichever comes
 * first. Bounds the read of a channel whose write end some other process may keep open forever.
 */
export async function streamSettled(stream: Readable | undefined, after: Promise<unknown>, graceMs: number): Promise<void> {
	if (stream === undefined || stream.readableEnded || stream.destroyed) {
		return;
	}

	await new Promise<void>(resolve => {
		let timer: NodeJS.Timeout | undefined;
		const finish = () => {
			clearTimeout(timer);
			stream.off('end', finish);
			stream.off('close', finish);
			stream.off('error', finish);
			resolve();
		};

		stream.once('end', finish);
		stream.once('close', finish);
		stream.once('error', finish);
		void after.finally(() => {
			timer = setTimeout(finish, graceMs);
		});
	});
}
