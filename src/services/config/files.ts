import type {DescriptorRole, FileAccess} from '../vmm/driver.js';
import type {FileSource, VmConfig} from './vm-config.js';

/** One file-like field of a `VmConfig`, with how vmwarden opens it when it is a path. */
export interface ConfigFile {
	role: Exclude<DescriptorRole, 'failure' | 'payload'>;
	/** The field as a path into the config: `kernel`, `disks[1].image`, `indirectFiles[0]`. */
	field: string;
	source: FileSource;
	access: FileAccess;
}

/**
 * The files of a config in the reference's descriptor order: indirect files, console, log,
 * bootloader, initrd, each disk, kernel. (The failure channel, which is not a config field, goes
 * between log and bootloader.) Validation and the command line both walk this list, so a file is
 * checked with exactly the access it is later opened with.
 */
export function listConfigFiles(config: VmConfig): ConfigFile[] {
	const files: ConfigFile[] = [];
	for (const [index, source] of (config.indirectFiles ?? []).entries()) {
		files.push({role: 'indirect', field: `indirectFiles[${index}]`, source, access: 'read'});
	}

	if (config.consoleOutput !== undefined) {
		files.push({role: 'console', field: 'consoleOutput', source: config.consoleOutput, access: 'append'});
	}

	if (config.logOutput !== undefined) {
		files.push({role: 'log', field: 'logOutput', source: config.logOutput, access: 'append'});
	}

	if (config.bootloader !== undefined) {
		files.push({role: 'bootloader', field: 'bootloader', source: config.bootloader, access: 'read'});
	}

	if (config.initrd !== undefined) {
		files.push({role: 'initrd', field: 'initrd', source: config.initrd, access: 'read'});
	}

	for (const [index, disk] of (config.disks ?? []).entries()) {
		files.push({role: 'disk', field: `disks[${index}].image`, source: disk.image, access: disk.writable ? 'readWrite' : 'read'});
	}

	if (config.kernel !== undefined) {
		files.push({role: 'kernel', field: 'kernel', source: config.kernel, access: 'read'});
	}

	return files;
}
