/** Resolves once `condition` holds, checking every 5 ms; throws after `timeoutMs` (default 10 s). */
export async function until(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
	const deadline = Date.now() + timeoutMs;
	while (!condition()) {
		if (Date.now() > deadline) {
			throw new Error('timed out');
		}

		await new Promise(resolve => {
			setTimeout(resolve, 5);
		});
	}
}
