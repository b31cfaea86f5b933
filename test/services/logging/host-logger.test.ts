import {jest} from '@jest/globals';
import winston from 'winston';
import {InvalidConfigError} from '../../../src/errors.js';
import {hostLogger} from '../../../src/services/logging/host-logger.js';
import {getDefaultLogger, vmLogger, type Logger} from '../../../src/services/logging/logger.js';

function collecting(): {logger: Logger; lines: string[]} {
	const lines: string[] = [];
	const logger: Logger = {
		error: message => lines.push(`error ${message}`),
		warn: message => lines.push(`warn ${message}`),
		info: message => lines.push(`info ${message}`),
		debug: message => lines.push(`debug ${message}`),
	};
	return {logger, lines};
}

/** Lets winston's streams hand their lines on. */
async function flushed(): Promise<void> {
	await new Promise(resolve => setImmediate(resolve));
}

afterEach(() => {
	jest.restoreAllMocks();
});

describe('the logger vmwarden uses when the host gives none', () => {
	test('writes warnings and errors to stderr, info and debug nowhere, and nothing to stdout', async () => {
		const stdout = jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
		const stderr = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
		const logger = vmLogger(hostLogger(undefined, undefined), 7);
		logger.debug('debugged');
		logger.info('informed');
		logger.warn('warned');
		logger.error('failed');
		await flushed();
		expect(stdout).not.toHaveBeenCalled();
		// Node's own warnings (the VM Modules one under Jest) share stderr.
		const written = stderr.mock.calls.map(([chunk]) => String(chunk)).filter(chunk => chunk.includes('[vm 7]'));
		expect(written).toHaveLength(2);
		expect(written[0]).toMatch(/ warn \[vm 7\] warned\n$/);
		expect(written[1]).toMatch(/ error \[vm 7\] failed\n$/);
	});

	test('logLevel silent writes nothing anywhere; logLevel debug writes every level to stderr', async () => {
		const stdout = jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
		const stderr = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
		hostLogger(undefined, 'silent').error('failed');
		await flushed();
		expect(stderr).not.toHaveBeenCalled();
		hostLogger(undefined, 'debug').debug('debugged');
		await flushed();
		expect(stderr.mock.calls.map(([chunk]) => String(chunk)).filter(chunk => chunk.includes('[vmwarden]'))).toEqual([expect.stringMatching(/ debug \[vmwarden\] debugged\n$/)]);
		expect(stdout).not.toHaveBeenCalled();
	});

	test('is one logger per level', () => {
		expect(getDefaultLogger('warn')).toBe(getDefaultLogger());
		expect(getDefaultLogger('debug')).not.toBe(getDefaultLogger());
	});
});

describe('a minimal host logger', () => {
	test('gets one line per call at its level, labelled with the VM, info and above by default', async () => {
		const {logger, lines} = collecting();
		const forVm = vmLogger(hostLogger(logger, undefined), 2049);
		forVm.debug('not shown');
		forVm.info('booted');
		forVm.warn('slow');
		forVm.error('died');
		await flushed();
		expect(lines).toEqual(['info [vm 2049] booted', 'warn [vm 2049] slow', 'error [vm 2049] died']);
	});

	test('logLevel filters what it gets', async () => {
		const {logger, lines} = collecting();
		const quiet = hostLogger(logger, 'error');
		quiet.warn('not shown');
		quiet.error('shown');
		const verbose = hostLogger(logger, 'debug');
		verbose.debug('detail');
		await flushed();
		expect(lines).toEqual(['error shown', 'debug detail']);
	});

	test('console fits, and one that throws does not throw into vmwarden', async () => {
		const info = jest.spyOn(console, 'info').mockImplementation(() => undefined);
		hostLogger(console, 'info').info('hello');
		const throwing = {...collecting().logger, error: () => {
			throw new Error('broken logger');
		}};
		expect(() => hostLogger(throwing, 'info').error('lost')).not.toThrow();
		await flushed();
		expect(info).toHaveBeenCalledWith('hello');
	});
});

describe('what hostLogger refuses or keeps', () => {
	test('a winston logger is used as it is, with its own level', () => {
		const host = winston.createLogger({level: 'debug', silent: true});
		expect(hostLogger(host, 'error')).toBe(host);
	});

	test.each([
		['logLevel', undefined, 'verbose', 'must be one of silent, error, warn, info, debug'],
		['logger', {info: () => undefined}, undefined, 'must have an error method (a winston logger, console, or anything with error, warn, info and debug)'],
	] as const)('a bad %s is an option error naming it', (field, logger, logLevel, reason) => {
		const run = () => hostLogger(logger as unknown as Logger, logLevel as unknown as 'info');
		expect(run).toThrow(InvalidConfigError);
		expect(run).toThrow(`Invalid option: ${field}: ${reason}`);
	});
});
