import winston from 'winston';

/** vmwarden's own log lines, on stderr (stdout is for results and the guest console). */
export function stderrLogger(level: string): winston.Logger {
	return winston.createLogger({
		level,
		format: winston.format.combine(
			winston.format.timestamp(),
			winston.format.printf(({timestamp, level: lineLevel, message, label}) => `${String(timestamp)} ${lineLevel} [${typeof label === 'string' ? label : 'vmwarden'}] ${String(message)}`),
		),
		transports: [new winston.transports.Console({stderrLevels: ['error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly']})],
	});
}
