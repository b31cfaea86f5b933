import winston from 'winston';
import {sanitizeForLog} from './sanitize.js';

/**
 * What vmwarden needs of a host's logger: `console`, pino, bunyan and winston all fit. Each method
 * gets one line of text (a VM's lines start with `[vm <cid>]`); a winston logger is used as it is.
 */
export interface Logger {
	error(message: string): unknown;
	warn(message: string): unknown;
	info(message: string): unknown;
	debug(message: string): unknown;
	child?(fields: Record<string, unknown>): Logger;
}

/** The levels vmwarden logs at, most severe first; `silent` logs nothing. */
export const LOG_LEVELS = ['silent', 'error', 'warn', 'info', 'debug'] as const;
export type LogLevel = typeof LOG_LEVELS[number];

/** What vmwarden logs when the host gives no logger and no level: warnings and errors. */
export const DEFAULT_LOG_LEVEL: LogLevel = 'warn';

const defaultLoggers = new Map<LogLevel, winston.Logger>();

/**
 * vmwarden's logger when the host passes none: `level` and above (default warnings and errors) to
 * stderr, never stdout, which belongs to the host.
 */
export function getDefaultLogger(level: LogLevel = DEFAULT_LOG_LEVEL): winston.Logger {
	let logger = defaultLoggers.get(level);
	if (logger === undefined) {
		logger = winston.createLogger({
			level: level === 'silent' ? 'error' : level,
			silent: level === 'silent',
			format: winston.format.combine(
				winston.format.timestamp(),
				// vmwarden's labels are strings (`vm <cid>`); anything else is not vmwarden's to print.
				winston.format.printf(({timestamp, level, message, label}) => `${String(timestamp)} ${level} [${typeof label === 'string' ? label : 'vmwarden'}] ${String(message)}`),
			),
			// Straight to process.stderr, not through console: the host may have redirected console to stdout.
			transports: [new winston.transports.Stream({stream: process.stderr})],
		});
		defaultLoggers.set(level, logger);
	}

	return logger;
}

type LogEntry = Record<string | symbol, unknown>;

// winston's `SPLAT` symbol (triple-beam's `Symbol.for('splat')`): the arguments a `%s` format reads.
const SPLAT = Symbol.for('splat');

function sanitizeValue(value: unknown): unknown {
	return typeof value === 'string' ? sanitizeForLog(value) : value;
}

/** A `%s` argument, or a metadata object that `format.splat()` merges into the entry. */
function sanitizeArgument(value: unknown): unknown {
	if (value instanceof Error) {
		// What `%s` would print for it, made safe.
		return sanitizeForLog(value.stack ?? value.message);
	}

	if (typeof value !== 'object' || value === null || Object.getPrototypeOf(value) !== Object.prototype) {
		return sanitizeValue(value);
	}

	return Object.fromEntries(Object.entries(value).map(([key, field]) => [key, sanitizeValue(field)]));
}

/** A copy of a log entry whose text fields, and the `%s` arguments, are safe in one log line. */
function sanitizeEntry(info: LogEntry | Error): LogEntry {
	const entry: LogEntry = {...info};
	if (info instanceof Error) {
		// Not enumerable on an Error, so not copied above.
		entry['message'] = info.message;
		entry['stack'] = info.stack;
		entry['cause'] = info.cause;
	}

	for (const key of Object.keys(entry)) {
		entry[key] = sanitizeValue(entry[key]);
	}

	const splat = entry[SPLAT];
	if (Array.isArray(splat)) {
		entry[SPLAT] = splat.map(sanitizeArgument);
	}

	return entry;
}

/**
 * A child logger for one VM: every line carries its CID, as a label and as a field. Much of what a
 * VM logs comes from outside (guest lines, failure text, VMM output), so every entry is sanitized
 * here, before any of the caller's formats sees it: control characters escaped, length bounded.
 * Built as winston's own `child` is, by overriding `write`, which every logging method ends in; in
 * one object rather than a child of a child, which a fleet holds one of per VM.
 */
export function vmLogger(parent: winston.Logger, cid: number): winston.Logger {
	const fields = {label: `vm ${cid}`, cid};
	return Object.create(parent, {
		write: {
			value(info: LogEntry | Error) {
				// As winston's `child` merges its fields: the entry's own win.
				return parent.write({...fields, ...sanitizeEntry(info)});
			},
		},
	}) as winston.Logger;
}
