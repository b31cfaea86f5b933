import winston from 'winston';

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

/** A child logger for one VM: every line carries its CID, as a label and as a field. */
export function vmLogger(parent: winston.Logger, cid: number): winston.Logger {
	return parent.child({label: `vm ${cid}`, cid});
}
