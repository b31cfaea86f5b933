import winston from 'winston';
import {sanitizeForLog} from './sanitize.js';

let defaultLogger: winston.Logger | undefined;

/** vmwarden's logger when the caller passes none: info and above, to the console, with a timestamp. */
export function getDefaultLogger(): winston.Logger {
	defaultLogger ??= winston.createLogger({
		level: 'info',
		format: winston.format.combine(
			winston.format.timestamp(),
			winston.format.printf(({timestamp, level, message, label}) => `${String(timestamp)} ${level} [${String(label ?? 'vmwarden')}] ${String(message)}`),
		),
		transports: [new winston.transports.Console()],
	});
	return defaultLogger;
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
 * Built as winston's own `child` is, by overriding `write`, which every logging method ends in.
 */
export function vmLogger(parent: winston.Logger, cid: number): winston.Logger {
	const child = parent.child({label: `vm ${cid}`, cid});
	return Object.create(child, {
		write: {
			value(info: LogEntry | Error) {
				return child.write(sanitizeEntry(info));
			},
		},
	}) as winston.Logger;
}
