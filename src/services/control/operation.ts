import {VmControlUnsupportedError, type VmControlOperation} from '../../errors.js';
import type {VmmControlContext, VmmDriver} from '../vmm/driver.js';
import type {VmEnvironment} from '../vmm/environment.js';
import type {BalloonStats} from './balloon.js';

/** What a control request needs: the VM's environment and its running VMM's pid and directory. */
export interface ControlInput {
	env: VmEnvironment;
	pid: number;
	tempDir: string;
	/** The VMM's binary as it was spawned. */
	vmmFile: string;
}

const MIB = 1024 * 1024;

function contextOf({env, pid, tempDir, vmmFile}: ControlInput): VmmControlContext {
	const {memoryMib, balloon} = env.config;
	return {
		vmmPath: vmmFile,
		environment: env.vmmEnvironment,
		tempDir,
		pid,
		controlSocket: env.controlSocket(tempDir),
		// Validated at start; the driver checks it again, as the caller's object may have changed since.
		memoryBytes: typeof memoryMib === 'number' ? memoryMib * MIB : undefined,
		balloon: balloon === true,
	};
}

function method<K extends 'suspend' | 'resume' | 'setBalloon' | 'balloonStats'>(driver: VmmDriver, operation: K & VmControlOperation): NonNullable<VmmDriver[K]> {
	const found = driver[operation];
	if (found === undefined) {
		throw new VmControlUnsupportedError(operation, driver.name);
	}

	return found;
}

/** Pauses the guest's vCPUs through the driver; resolves once the VMM acknowledged it. */
export async function suspendVmm(input: ControlInput): Promise<void> {
	await method(input.env.driver, 'suspend').call(input.env.driver, contextOf(input));
}

/** Lets the guest's vCPUs run again; resolves once the VMM acknowledged it. */
export async function resumeVmm(input: ControlInput): Promise<void> {
	await method(input.env.driver, 'resume').call(input.env.driver, contextOf(input));
}

/** Asks the balloon to take `bytes` of guest memory back (0 gives it all to the guest). */
export async function setVmmBalloon(input: ControlInput, bytes: number): Promise<void> {
	await method(input.env.driver, 'setBalloon').call(input.env.driver, contextOf(input), bytes);
}

/** The balloon's size and the guest's memory statistics. */
export async function readVmmBalloonStats(input: ControlInput): Promise<BalloonStats> {
	return method(input.env.driver, 'balloonStats').call(input.env.driver, contextOf(input));
}
