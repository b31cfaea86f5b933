import type {Readable} from 'node:stream';

/**
 * Resolves when `stream` ended, closed or failed, or `graceMs` after `after` settled, whichever comes
 * first. Bounds the read of a channel whose write end some other process may keep open forever.
 */
export async function streamSettled(stream: Readable | undefined, after: Promise<unknown>, graceMs: number): Promise<void> {
	if (stream === undefined || stream.readableEnded || stream.destroyed) {
		return;
	}

	await settledWithin(after, graceMs, finish => {
		stream.once('end', finish);
		stream.once('close', finish);
		stream.once('error', finish);
		return () => {
			stream.off('end', finish);
			stream.off('close', finish);
			stream.off('error', finish);
		};
	});
}

/**
 * Resolves when `watch` calls its `finish`, or `graceMs` after `after` settled, whichever comes
 * first; `watch` returns how to stop watching.
 */
export async function settledWithin(after: Promise<unknown>, graceMs: number, watch: (finish: () => void) => () => void): Promise<void> {
	await new Promise<void>(resolve => {
		let timer: NodeJS.Timeout | undefined;
		// Assigned once, after `finish`, which `watch` may call before it returns (hence `done`).
		// eslint-disable-next-line prefer-const
		let unwatch: (() => void) | undefined;
		let done = false;
		const finish = () => {
			if (!done) {
				done = true;
				clearTimeout(timer);
				unwatch?.();
				resolve();
			}
		};

		unwatch = watch(finish);
		if (done) {
			unwatch();
		}

		void after.finally(() => {
			if (!done) {
				timer = setTimeout(finish, graceMs);
			}
		});
	});
}
