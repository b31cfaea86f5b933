import winston from 'winston';

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
				winston.format.printf(({timestamp, level, message, label}) => `${String(timestamp)} ${level} [${String(label ?? 'vmwarden')}] ${String(message)}`),
			),
			// Straight to process.stderr, not through console: the host may have redirected console to stdout.
			transports: [new winston.transports.Stream({stream: process.stderr})],
		});
		defaultLoggers.set(level, logger);
	}

	return logger;
}

/** A child logger for one VM: every line carries its CID, as a label and as a field. */
export function vmLogger(parent: winston.Logger, cid: number): winston.Logger {
	return parent.child({label: `vm ${cid}`, cid});
}
