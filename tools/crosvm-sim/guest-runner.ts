import {formatPayloadReport} from 'vmwarden/payload-protocol';
import type {FinalAction, GuestDirective, GuestOutput, GuestScript} from './guest-script.js';
import type {SerialOutput} from './serial-devices.js';

/** The devices a guest writes to, by what the guest uses them for (absent ones discard). */
export interface GuestDevices {
	/** ttyS0: `hardware=serial,num=1`. */
	console?: SerialOutput;
	/** ttyS1: `hardware=serial,num=2`, the failure reason. */
	failure?: SerialOutput;
	/** ttyS2: `hardware=serial,num=3`, the payload reports. */
	payload?: SerialOutput;
	/** hvc0: `hardware=virtio-console,num=1`. */
	kmsg?: SerialOutput;
	/** hvc2: `hardware=virtio-console,num=3`. */
	log?: SerialOutput;
}

/** What the VM around the guest offers it: pausing, and the switches a guest can flip. */
export interface GuestHost {
	/** Resolves at once when running, else when the VM is resumed. */
	whenRunning(): Promise<void>;
	ignoreSigterm(): void;
	ignoreStop(): void;
	/** Starts a process that holds the failure UART's write end for `ms`. */
	spawnHolder(ms: number): Promise<void>;
}

const FLOOD_CHUNK = 64 * 1024;

/** The length of each line `console-flood` writes, its newline included. */
const CONSOLE_FLOOD_LINE = 64;

function delay(ms: number): Promise<void> {
	return new Promise(resolve => {
		setTimeout(resolve, ms);
	});
}

function outputFor(devices: GuestDevices, output: GuestOutput): SerialOutput | undefined {
	return devices[output];
}

async function step(directive: GuestDirective, devices: GuestDevices, host: GuestHost): Promise<void> {
	switch (directive.kind) {
		case 'write': {
			outputFor(devices, directive.output)?.write(`${directive.text}\n`);
			break;
		}

		case 'payload': {
			devices.payload?.write(formatPayloadReport(directive.report));
			break;
		}

		case 'fail': {
			devices.failure?.write(directive.text);
			break;
		}

		case 'fail-flood': {
			const chunk = Buffer.alloc(Math.min(FLOOD_CHUNK, directive.bytes), 'x');
			for (let left = directive.bytes; left > 0; left -= chunk.length) {
				devices.failure?.write(left >= chunk.length ? chunk : chunk.subarray(0, left));
			}

			break;
		}

		case 'console-flood': {
			// Numbered 64-byte lines, so a reader can tell that none is missing or out of order.
			for (let line = 0; line * CONSOLE_FLOOD_LINE < directive.bytes; line++) {
				devices.console?.write(`flood ${String(line).padStart(10, '0')} ${'x'.repeat(CONSOLE_FLOOD_LINE - 18)}\n`);
			}

			break;
		}

		case 'sleep': {
			await delay(directive.ms);
			break;
		}

		case 'ignore-sigterm': {
			host.ignoreSigterm();
			break;
		}

		case 'ignore-stop': {
			host.ignoreStop();
			break;
		}

		case 'spawn-holder': {
			await host.spawnHolder(directive.ms);
			break;
		}
	}
}

/** Plays the guest's directives in order (pausing while the VM is suspended); returns its end. */
export async function runGuest(script: GuestScript, devices: GuestDevices, host: GuestHost): Promise<FinalAction> {
	for (const directive of script.directives) {
		await host.whenRunning();
		await step(directive, devices, host);
	}

	await host.whenRunning();
	return script.final;
}
