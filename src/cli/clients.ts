import {createInterface} from 'node:readline';
import {parseConfigFile, sanitizeForLog, type ConfigFormat} from '../index.js';
import type {DeathJson, VmJson} from './api/serialize.js';
import {call, DaemonError, NoDaemonError, openStream} from './client.js';
import {EXIT_STATUS} from './exit-status.js';
import {printLine, printNotice, reportError} from './output.js';

export interface ClientOptions {
	socket: string;
	json: boolean;
}

/** Columns padded to their widest cell. */
export function table(header: string[], rows: string[][]): string[] {
	const widths = header.map((title, column) => Math.max(title.length, ...rows.map(row => row[column]?.length ?? 0)));
	return [header, ...rows].map(row => row.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join('  ').trimEnd());
}

function deathCell(death: DeathJson | null): string {
	if (death === null) {
		return '';
	}

	const how = death.signal === null ? (death.exitCode === null ? '' : ` exit ${death.exitCode}`) : ` ${death.signal}`;
	return `${death.reason} (${death.initiator}${how})`;
}

function vmRows(vms: VmJson[]): string[] {
	return table(['CID', 'STATE', 'PAYLOAD', 'PID', 'DEATH'], vms.map(vm => [String(vm.cid), vm.state, vm.payloadState, vm.pid === null ? '-' : String(vm.pid), deathCell(vm.death)]));
}

function vmDetails(vm: VmJson): string[] {
	const lines = [`CID      ${vm.cid}`, `state    ${vm.state}`, `payload  ${vm.payloadState}`, `pid      ${vm.pid ?? '-'}`];
	if (vm.death !== null) {
		lines.push(`death    ${deathCell(vm.death)}`);
		if (vm.death.failureReason !== null) {
			lines.push(`failure  ${sanitizeForLog(vm.death.failureReason)}${vm.death.failureContext === null ? '' : ` | ${sanitizeForLog(vm.death.failureContext)}`}`);
		}
	}

	return lines;
}

/** Runs a client command, mapping "no daemon" and the daemon's refusals to exit statuses. */
async function client(options: ClientOptions, work: () => Promise<void>): Promise<number> {
	try {
		await work();
		return EXIT_STATUS.ok;
	} catch (error) {
		if (options.json) {
			printLine(JSON.stringify(error instanceof DaemonError ? error.body : {error: {code: error instanceof NoDaemonError ? 'NO_DAEMON' : 'CLIENT', message: (error as Error).message}}));
		} else {
			printNotice((error as Error).message);
		}

		return error instanceof NoDaemonError ? EXIT_STATUS.unavailable : EXIT_STATUS.failed;
	}
}

export async function listCommand(options: ClientOptions): Promise<number> {
	return client(options, async () => {
		const {vms} = await call(options.socket, 'GET', '/v1/vms') as {vms: VmJson[]};
		if (options.json) {
			printLine(JSON.stringify({vms}));
		} else {
			for (const line of vmRows(vms)) {
				printLine(line);
			}
		}
	});
}

export async function infoCommand(cid: number, options: ClientOptions): Promise<number> {
	return client(options, async () => {
		const vm = await call(options.socket, 'GET', `/v1/vms/${cid}`) as VmJson;
		for (const line of options.json ? [JSON.stringify(vm)] : vmDetails(vm)) {
			printLine(line);
		}
	});
}

/**
 * Sends a config file to the daemon, which creates and starts the VM. The file is read and its
 * paths resolved here (the daemon does not know this directory); the daemon validates it.
 */
export async function startCommand(file: string, options: ClientOptions & {format: ConfigFormat | 'auto'; payloadChannel: boolean; captureConsole: boolean}): Promise<number> {
	let config;
	try {
		({config} = await parseConfigFile(file, options.format === 'auto' ? undefined : options.format));
	} catch (error) {
		return reportError(error, {json: options.json, file});
	}

	return client(options, async () => {
		const vm = await call(options.socket, 'POST', '/v1/vms', {config, payloadChannel: options.payloadChannel, captureConsole: options.captureConsole}) as VmJson;
		printLine(options.json ? JSON.stringify(vm) : `VM ${vm.cid}: ${vm.state} (VMM pid ${vm.pid ?? '-'})`);
	});
}

export async function stopCommand(cid: number, options: ClientOptions & {timeout?: number}): Promise<number> {
	return client(options, async () => {
		const vm = await call(options.socket, 'POST', `/v1/vms/${cid}/stop`, options.timeout === undefined ? {} : {timeoutMs: options.timeout}) as VmJson;
		printLine(options.json ? JSON.stringify(vm) : `VM ${vm.cid}: ${vm.state}${vm.death === null ? '' : `, ${deathCell(vm.death)}`}`);
	});
}

export async function killCommand(cid: number, options: ClientOptions): Promise<number> {
	return client(options, async () => {
		const vm = await call(options.socket, 'POST', `/v1/vms/${cid}/kill`, {}) as VmJson;
		printLine(options.json ? JSON.stringify(vm) : `VM ${vm.cid}: ${vm.state}${vm.death === null ? '' : `, ${deathCell(vm.death)}`}`);
	});
}

/** One event for people: its time, CID, type and the fields that say what happened. */
function describeEvent(event: Record<string, unknown>): string {
	const {type, cid, initiator: _initiator, death, ...rest} = event;
	const details = type === 'died' ? deathCell(death as DeathJson) : Object.entries(rest).map(([key, value]) => `${key}=${typeof value === 'string' ? sanitizeForLog(value, 200) : JSON.stringify(value)}`).join(' ');
	return `${new Date().toISOString()}  ${typeof cid === 'number' ? String(cid) : '-'}  ${String(type)}  ${details}`;
}

/** Follows the daemon's event stream until it ends (the daemon shut down) or the user stops it. */
export async function eventsCommand(options: ClientOptions & {cid?: number}): Promise<number> {
	return client(options, async () => {
		const response = await openStream(options.socket, options.cid === undefined ? '/v1/events' : `/v1/events?cid=${options.cid}`);
		// Lines are bounded by what the daemon writes (events with bounded texts).
		for await (const line of createInterface({input: response, crlfDelay: Infinity})) {
			if (line.length === 0) {
				continue;
			}

			printLine(options.json ? line : describeEvent(JSON.parse(line) as Record<string, unknown>));
		}
	});
}

/**
 * Shows a VM's console: the lines the daemon kept, then each line as the guest writes it, until the
 * VM's console ends (it died) or the user stops it. The text is the guest's own, as `run --console`
 * shows it; `--json` prints the daemon's stream as it is.
 */
export async function consoleCommand(cid: number, options: ClientOptions): Promise<number> {
	return client(options, async () => {
		const response = await openStream(options.socket, `/v1/vms/${cid}/console`);
		// Lines are bounded by what the daemon writes (console lines of at most 4 KiB).
		for await (const line of createInterface({input: response, crlfDelay: Infinity})) {
			if (line.length === 0) {
				continue;
			}

			if (options.json) {
				printLine(line);
				continue;
			}

			const entry = JSON.parse(line) as {type: string; text?: string};
			if (entry.type === 'line' && entry.text !== undefined) {
				printLine(entry.text);
			}
		}
	});
}
