import type {SpawnedChild} from './spawner.js';

const running = new Set<number>();
let hooked = false;

/**
 * Without the parent-death wrapper, the host's own exit is the last chance to take its VMMs down
 * (it cannot run on SIGKILL): each pid still running then gets SIGKILL. A pid leaves the set as soon
 * as its exit is known, so a reused pid is never signalled.
 */
export function killOnHostExit(child: SpawnedChild): void {
	if (!hooked) {
		hooked = true;
		process.once('exit', () => {
			for (const pid of running) {
				try {
					process.kill(pid, 'SIGKILL');
				} catch {
					// Already gone.
				}
			}
		});
	}

	running.add(child.pid);
	void child.exited.then(() => {
		running.delete(child.pid);
	});
}
