import path from 'node:path';
import type winston from 'winston';
import type {FilePolicy} from '../config/file-policy.js';
import type {VmConfig} from '../config/vm-config.js';
import {VmOutputs} from '../console/outputs.js';
import type {VmmDriver} from './driver.js';

/**
 * What a VM's actors need but an inspector should not serialize (the config may hold FileHandles, the
 * driver and logger are objects with functions and streams): kept behind a summary.
 */
export class VmEnvironment {
	/** The VM's captured console and log lines (docs/operations.md). */
	readonly outputs = new VmOutputs();

	constructor(
		readonly config: VmConfig,
		readonly driver: VmmDriver,
		readonly vmmPath: string,
		readonly tempRoot: string,
		readonly logger: winston.Logger,
		readonly filePolicy: FilePolicy,
	) {}

	/** Where the VMM's control socket goes: in the VM's temporary directory, as Android does. */
	controlSocket(tempDir: string): string {
		return path.join(tempDir, `${this.driver.name}.sock`);
	}

	toJSON(): {driver: string; vmmPath: string; tempRoot: string} {
		return {driver: this.driver.name, vmmPath: this.vmmPath, tempRoot: this.tempRoot};
	}
}
