import {closeSync} from 'node:fs';
import type {FileHandle} from 'node:fs/promises';
import type winston from 'winston';
import {resolveFilePolicy, type FilePolicy, type FileRequester} from '../config/file-policy.js';
import {checkHandedDescriptor, openConfigPath} from '../config/open-file.js';
import type {FileSource, VmConfig} from '../config/vm-config.js';
import {OutputCapture} from './capture.js';
import type {CapturedOutput, VmOutputs} from './outputs.js';
import {openCapturePipe} from './pipe.js';

const FIELDS = {console: 'consoleOutput', log: 'logOutput'} as const satisfies Record<CapturedOutput, keyof VmConfig>;

/** A VM's captured outputs, from its launch to its death: made by the launch, owned by Running's `vmm` actor. */
export interface VmCaptures {
	/**
	 * The config the VMM's command line is built from: each captured output replaced by the write
	 * end of its pipe.
	 */
	readonly commandConfig: VmConfig;
	/** Closes vmwarden's copies of the write ends, once the VMM holds them (or will never run). */
	closeWriteEnds(): Promise<void>;
	/** Resolves once every captured output is finished, or `graceMs` after `exited` for one some other process holds open. */
	settled(exited: Promise<unknown>, graceMs: number): Promise<void>;
	/** The console's last lines, when it is captured. */
	consoleTail(): string[] | undefined;
	/** Stops every capture and closes what it opened. Idempotent. */
	dispose(): void;
}

export interface OpenCapturesInput {
	config: VmConfig;
	tempDir: string;
	filePolicy: FilePolicy;
	requester: FileRequester;
	outputs: VmOutputs;
	logger: winston.Logger;
}

/** Opens the destination of a captured output under the file policy, as `openDescriptors` would for the VMM. */
function openDestination(field: string, source: FileSource | undefined, input: OpenCapturesInput): {fd: number | undefined; owned: boolean} {
	if (source === undefined) {
		return {fd: undefined, owned: false};
	}

	const policy = resolveFilePolicy(input.filePolicy, input.requester);
	return typeof source === 'string'
		? {fd: openConfigPath({field, path: source, access: 'append'}, policy, true), owned: true}
		: {fd: checkHandedDescriptor(field, source, 'append', policy), owned: false};
}

/**
 * Whether `openCaptures` makes anything in the VM's temporary directory (a FIFO per captured
 * output): then the directory must exist before the VMM's command is spawned.
 */
export function capturesNeedDirectory(config: VmConfig): boolean {
	return config.capture?.console === true || config.capture?.log === true;
}

/**
 * Sets up the outputs `config.capture` asks for: a pipe per output (in `tempDir`) whose write end
 * replaces the output in the VMM's config, and a reader that passes the bytes on to the original
 * destination. Nothing is made when nothing is captured. On failure, whatever was made is released.
 */
export async function openCaptures(input: OpenCapturesInput): Promise<VmCaptures> {
	const {config} = input;
	const captures: OutputCapture[] = [];
	const writers: FileHandle[] = [];
	const commandConfig: VmConfig = {...config};
	const dispose = () => {
		for (const capture of captures) {
			capture.dispose();
		}
	};

	const closeWriteEnds = async () => {
		await Promise.all(writers.splice(0).map(async writer => writer.close()));
	};

	try {
		for (const output of ['console', 'log'] as const) {
			if (config.capture?.[output] !== true) {
				continue;
			}

			const field = FIELDS[output];
			const destination = openDestination(field, config[field], input);
			const pipe = await openCapturePipe(input.tempDir, `${output}.fifo`).catch((error: unknown) => {
				if (destination.owned && destination.fd !== undefined) {
					closeSync(destination.fd);
				}

				throw error;
			});
			writers.push(pipe.writer);
			captures.push(new OutputCapture({output, reader: pipe.reader, destination: destination.fd, ownsDestination: destination.owned, outputs: input.outputs, logger: input.logger}));
			commandConfig[field] = pipe.writer;
		}
	} catch (error) {
		dispose();
		await closeWriteEnds();
		throw error;
	}

	const consoleCapture = captures.find(capture => capture.output === 'console');
	return {
		commandConfig,
		closeWriteEnds,
		async settled(exited, graceMs) {
			await exited;
			let timer: NodeJS.Timeout | undefined;
			await Promise.race([
				Promise.all(captures.map(async capture => capture.finished)),
				new Promise<void>(resolve => {
					timer = setTimeout(resolve, graceMs);
				}),
			]);
			clearTimeout(timer);
		},
		consoleTail: () => consoleCapture?.tail(),
		dispose,
	};
}
