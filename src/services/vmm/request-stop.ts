import {vmmCommandPath} from './process.js';
import type {VmEnvironment} from './environment.js';

export interface StopRequestInput {
	env: VmEnvironment;
	/** The running VMM's pid and temporary directory (where its control socket is). */
	pid: number;
	tempDir: string;
}

/**
 * Asks the VMM, through its driver, to stop gracefully. Resolves once the request was delivered;
 * `signal` (the actor's, aborted when the machine leaves the state that asked) ends it early.
 */
export async function requestStop({env, pid, tempDir}: StopRequestInput, signal?: AbortSignal): Promise<void> {
	await env.driver.requestStop({vmmPath: vmmCommandPath(env.vmmPath), environment: env.vmmEnvironment, tempDir, pid, controlSocket: env.controlSocket(tempDir), signal});
}
