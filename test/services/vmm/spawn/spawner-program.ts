import {spawn, type ChildProcess} from 'node:child_process';
import {SPAWNER_SOURCE} from '../../../../src/services/vmm/spawn/spawner-source.js';

/**
 * Starts the spawner's program as spawner.ts does (an empty environment, the IPC channel at fd 3,
 * advanced serialization), with `args` after the host's pid, for tests that speak its protocol
 * themselves. Resolves once it said it is ready.
 */
export async function startSpawnerProgram(args: string[], stderr: 'pipe' | 'inherit'): Promise<ChildProcess> {
	const child = spawn(process.execPath, ['-e', SPAWNER_SOURCE, String(process.pid), ...args], {
		stdio: ['ignore', 'ignore', stderr, 'ipc'],
		serialization: 'advanced',
		env: {},
	});
	await new Promise<void>(resolve => {
		child.once('message', () => {
			resolve();
		});
	});
	return child;
}
