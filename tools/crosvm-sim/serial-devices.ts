import {statSync, writeSync} from 'node:fs';
import {openFileOrInherited, osErrorText} from './descriptors.js';
import {ConfigurationError} from './failures.js';
import {log} from './log.js';
import type {SerialParameters} from './serial-options.js';

/** Where one serial device's output goes: a descriptor, or nowhere (sink, syslog, unix). */
export interface SerialOutput {
	readonly device: SerialParameters;
	/** The descriptor written to, when the output goes anywhere. */
	readonly fd: number | undefined;
	/** Writes all of `data`, blocking like a UART; a reader that went away stops the output. */
	write(data: string | Uint8Array): void;
}

const waitCell = new Int32Array(new SharedArrayBuffer(4));

function writeAll(fd: number, data: Uint8Array): void {
	let offset = 0;
	while (offset < data.length) {
		try {
			offset += writeSync(fd, data, offset, data.length - offset);
		} catch (error) {
			if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') {
				throw error;
			}

			// A non-blocking descriptor that is full: wait a little, as a blocking write would.
			Atomics.wait(waitCell, 0, 0, 5);
		}
	}
}

class DescriptorOutput implements SerialOutput {
	readonly device: SerialParameters;
	fd: number | undefined;

	constructor(device: SerialParameters, fd: number | undefined) {
		this.device = device;
		this.fd = fd;
	}

	write(data: string | Uint8Array): void {
		if (this.fd === undefined) {
			return;
		}

		try {
			writeAll(this.fd, typeof data === 'string' ? Buffer.from(data) : data);
		} catch (error) {
			log('error', `failed to write to serial ${this.device.hardware} num ${this.device.num}: ${osErrorText(error)}`);
			this.fd = undefined;
		}
	}
}

/**
 * Sets up a serial device's output as crosvm does: `type=file` opens `path` (append, created when
 * missing) or uses the inherited `/proc/self/fd/N`; `stdout` is descriptor 1; `input` must open.
 * Throws `ConfigurationError` (exit 1).
 */
export function openSerialOutput(device: SerialParameters): SerialOutput {
	const what = `serial ${device.hardware} num ${device.num}`;
	if (device.input !== undefined) {
		openFileOrInherited(device.input, 'r', `${what} input`);
	}

	switch (device.type) {
		case 'file': {
			if (device.path === undefined) {
				throw new ConfigurationError(`failed to create ${what}: serial device type file requires a path`);
			}

			return new DescriptorOutput(device, openFileOrInherited(device.path, 'a', what).fd);
		}

		case 'stdout': {
			return new DescriptorOutput(device, 1);
		}

		case 'unix':
		case 'unix-stream': {
			// The socket must exist; what the guest writes is not forwarded (see docs/crosvm-sim.md).
			if (device.path === undefined) {
				throw new ConfigurationError(`failed to create ${what}: serial device type ${device.type} requires a path`);
			}

			try {
				if (!statSync(device.path).isSocket()) {
					throw Object.assign(new Error('not a socket'), {code: 'ECONNREFUSED', errno: 111});
				}
			} catch (error) {
				throw new ConfigurationError(`failed to create ${what}: ${osErrorText(error)}`);
			}

			return new DescriptorOutput(device, undefined);
		}

		case 'sink':
		case 'syslog': {
			return new DescriptorOutput(device, undefined);
		}
	}
}
