import {readdirSync} from 'node:fs';

/**
 * The sorted entries of `directory` once they are `expected`, or after two seconds: a removal's
 * unlinks may trail its answer by a moment.
 */
export async function entriesOnceSettled(directory: string, expected: string[]): Promise<string[]> {
	const deadline = Date.now() + 2000;
	while (readdirSync(directory).sort().join('\0') !== expected.join('\0') && Date.now() < deadline) {
		await new Promise(resolve => {
			setTimeout(resolve, 10);
		});
	}

	return readdirSync(directory).sort();
}
