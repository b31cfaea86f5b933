import path from 'node:path';
import type winston from 'winston';
import type {FilePolicy} from '../config/file-policy.js';
import type {VmConfig} from '../config/vm-config.js';
import {VmOutputs} from '../console/outputs.js';
import type {Requester} from '../../types.js';
import type {VmmDriver} from './driver.js';
import type {VmmEnvironment} from './vmm-environment.js';

/** What a VM's environment is made of: its inputs that stay as they are for its whole life. */
export interface VmEnvironmentParts {
	config: VmConfig;
	driver: VmmDriver;
	vmmPath: string;
	tempRoot: string;
	logger: winston.Logger;
	filePolicy: FilePolicy;
	requester: Requester;
	payloadChannel: boolean;
	vmmEnvironment: VmmEnvironment;
}

/**
 * What a VM's actors need but an inspector should not serialize (the config may hold FileHandles, the
 * driver and logger are objects with functions and streams): kept behind a summary. It also holds
 * the inputs that never change, out of the machine's context: XState copies the context on every
 * `assign`, and a copy with too many fields is a slow (dictionary) object in V8, several times the size.
 */
export class VmEnvironment {
	/** The VM's captured console and log lines (docs/operations.md). */
	readonly outputs = new VmOutputs();
	readonly config: VmConfig;
	readonly driver: VmmDriver;
	readonly vmmPath: string;
	readonly tempRoot: string;
	readonly logger: winston.Logger;
	readonly filePolicy: FilePolicy;
	/** Who asked for the VM: logged when it starts, and whom its files are checked for. */
	readonly requester: Requester;
	/** Whether the guest gets the payload report channel (`/dev/ttyS2`). */
	readonly payloadChannel: boolean;
	/** The environment of the VMM and of its commands (checked and frozen). */
	readonly vmmEnvironment: VmmEnvironment;
	/** Whether the boot hang-up is watched (the config's `detectHangup`, as it was when the VM was made). */
	readonly detectHangup: boolean;

	constructor(parts: VmEnvironmentParts) {
		this.config = parts.config;
		this.driver = parts.driver;
		this.vmmPath = parts.vmmPath;
		this.tempRoot = parts.tempRoot;
		this.logger = parts.logger;
		this.filePolicy = parts.filePolicy;
		this.requester = parts.requester;
		this.payloadChannel = parts.payloadChannel;
		this.vmmEnvironment = parts.vmmEnvironment;
		this.detectHangup = parts.config.detectHangup ?? false;
	}

	/** Where the VMM's control socket goes: in the VM's temporary directory, as Android does. */
	controlSocket(tempDir: string): string {
		return path.join(tempDir, `${this.driver.name}.sock`);
	}

	/** What an inspector shows of it: also the inputs that moved here from the context. */
	toJSON(): {driver: string; vmmPath: string; tempRoot: string; requester: Requester; payloadChannel: boolean; detectHangup: boolean} {
		const {vmmPath, tempRoot, requester, payloadChannel, detectHangup} = this;
		return {driver: this.driver.name, vmmPath, tempRoot, requester, payloadChannel, detectHangup};
	}
}
