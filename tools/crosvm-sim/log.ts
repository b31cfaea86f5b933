import {writeSync} from 'node:fs';

/** crosvm's log levels, most severe first. */
export const LOG_LEVELS = ['off', 'error', 'warn', 'info', 'debug', 'trace'] as const;

export type LogLevel = (typeof LOG_LEVELS)[number];

let threshold: number = LOG_LEVELS.indexOf('info');

/** Applies `--log-level`: only messages at this level or more severe are written. */
export function setLogLevel(level: LogLevel): void {
	threshold = LOG_LEVELS.indexOf(level);
}

function timestamp(): string {
	// crosvm prints nanoseconds and an explicit offset: 2026-01-01T00:00:00.000000000+00:00
	return new Date().toISOString().replace(/\.(\d{3})Z$/, '.$1000000+00:00');
}

/**
 * Writes one log line on stderr the way crosvm's logger does: `[<time> ERROR crosvm] <message>`.
 * Synchronous, so nothing is lost when the process exits right after.
 */
export function log(level: Exclude<LogLevel, 'off'>, message: string): void {
	if (LOG_LEVELS.indexOf(level) > threshold) {
		return;
	}

	try {
		writeSync(2, `[${timestamp()} ${level.toUpperCase()} crosvm] ${message}\n`);
	} catch {
		// stderr is gone; crosvm carries on without its log too.
	}
}
