import {Writable} from 'node:stream';
import winston from 'winston';
import {InvalidConfigError} from '../../errors.js';
import {getDefaultLogger, LOG_LEVELS, type Logger, type LogLevel} from './logger.js';

/**
 * The winston logger vmwarden logs through, from the host's `logger` and `logLevel` options: the
 * host's winston logger as it is (its own level applies), a minimal logger behind a forwarding
 * transport filtered at `logLevel`, or vmwarden's stderr logger at `logLevel`.
 */
export function hostLogger(logger: Logger | undefined, logLevel: LogLevel | undefined): winston.Logger {
	if (logLevel !== undefined && !(LOG_LEVELS as readonly unknown[]).includes(logLevel)) {
		throw new InvalidConfigError('logLevel', `must be one of ${LOG_LEVELS.join(', ')}`);
	}

	if (logger === undefined) {
		return getDefaultLogger(logLevel);
	}

	if (isWinston(logger)) {
		return logger;
	}

	for (const method of ['error', 'warn', 'info', 'debug'] as const) {
		if (typeof logger[method] !== 'function') {
			throw new InvalidConfigError('logger', `must have an ${method} method (a winston logger, console, or anything with error, warn, info and debug)`);
		}
	}

	const level = logLevel ?? 'info';
	return winston.createLogger({
		level: level === 'silent' ? 'error' : level,
		silent: level === 'silent',
		transports: [forwardingTransport(logger)],
	});
}

function isWinston(logger: Logger): logger is winston.Logger {
	// Duck-typed: the host's winston may be another copy than ours, so instanceof would miss it.
	return 'transports' in logger && typeof (logger as Partial<winston.Logger>).add === 'function';
}

/** A winston transport handing each line to the host's logger (the demo collects lines the same way). */
function forwardingTransport(target: Logger): winston.transport {
	const sink = new Writable({
		objectMode: true,
		write(info: {level?: unknown; message?: unknown; label?: unknown}, _encoding, done) {
			const label = typeof info.label === 'string' ? `[${info.label}] ` : '';
			const text = `${label}${String(info.message)}`;
			try {
				switch (info.level) {
					case 'error': target.error(text); break;
					case 'warn': target.warn(text); break;
					case 'info': target.info(text); break;
					default: target.debug(text);
				}
			} catch {
				// A host logger that throws must not take the VM down with it.
			}

			done();
		},
	});
	return new winston.transports.Stream({stream: sink});
}
