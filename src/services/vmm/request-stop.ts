import type {VmEnvironment} from './environment.js';

export interface StopRequestInput {
	env: VmEnvironment;
	/** The running VMM's pid, temporary directory (where its control socket is) and binary. */
	pid: number;
	tempDir: string;
	vmmFile: string;
}

/**
 * Asks the VMM, through its driver, to stop gracefully. Resolves once the request was delivered;
 * `signal` (the actor's, aborted when the machine leaves the state that asked) ends it early.
 */
export async function requestStop({env, pid, tempDir, vmmFile}: StopRequestInput, signal?: AbortSignal): Promise<void> {
	await env.driver.requestStop({vmmPath: vmmFile, environment: env.vmmEnvironment, tempDir, pid, controlSocket: env.controlSocket(tempDir), signal});
}
