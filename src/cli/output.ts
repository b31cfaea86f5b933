import {ConfigFileError, InvalidConfigError, sanitizeForLog, VmSpawnError, type VmDeath} from '../index.js';
import {errorJson} from './api/serialize.js';
import {EXIT_STATUS, REASON_WORDS} from './exit-status.js';

/** Writes one line to stdout. */
export function printLine(text: string): void {
	process.stdout.write(`${text}\n`);
}

/** Writes one line to stderr, prefixed with the program's name. */
export function printNotice(text: string): void {
	process.stderr.write(`vmwarden: ${text}\n`);
}

/**
 * Reports an error that ends a command before or instead of a VM's death, and returns the exit
 * status for it: a config problem reads `FILE: FIELD: REASON`.
 */
export function reportError(error: unknown, {json, file}: {json: boolean; file?: string}): number {
	const status = error instanceof InvalidConfigError || error instanceof ConfigFileError
		? EXIT_STATUS.usage
		: error instanceof VmSpawnError ? EXIT_STATUS.spawnFailed : EXIT_STATUS.failed;
	if (json) {
		printLine(JSON.stringify({error: {...errorJson(error), ...(file === undefined ? {} : {file})}, exitStatus: status}));
	} else if (error instanceof InvalidConfigError) {
		printNotice(file === undefined ? `${error.field}: ${error.reason}` : `${file}: ${error.field}: ${error.reason}`);
	} else if (error instanceof Error) {
		printNotice(error.message);
	} else {
		printNotice(String(error));
	}

	return status;
}

/** A death for people, in one line plus the guest's failure text and the VMM's last words. */
export function describeDeath(death: VmDeath): string[] {
	const how = death.signal === undefined ? (death.exitCode === undefined ? '' : `, VMM exit status ${death.exitCode}`) : `, VMM killed by ${death.signal}`;
	const lines = [`VM ${death.cid} died: ${death.reason} (${REASON_WORDS[death.reason]}${how}; caused by the ${death.initiator}, payload ${death.payloadState})`];
	if (death.failureReason !== undefined) {
		// The guest wrote it: escaped, so it cannot drive the terminal.
		lines.push(`  failure reason: ${sanitizeForLog(death.failureReason)}${death.failureContext === undefined ? '' : ` | ${sanitizeForLog(death.failureContext)}`}`);
	}

	const tail = death.stderrTail.trim();
	if (tail.length > 0 && death.reason !== 'SHUTDOWN' && death.initiator !== 'caller') {
		lines.push('  VMM stderr (last lines):', ...tail.split('\n').slice(-8).map(line => `    ${sanitizeForLog(line)}`));
	}

	return lines;
}
