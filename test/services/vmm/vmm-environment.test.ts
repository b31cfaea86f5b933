import {describe, expect, test} from '@jest/globals';
import {InvalidConfigError} from '../../../src/errors.js';
import {checkVmmEnvironment, defaultVmmEnvironment, PASSED_HOST_PREFIXES, PASSED_HOST_VARIABLES, VMM_ENVIRONMENT_LIMITS} from '../../../src/services/vmm/vmm-environment.js';

function refusal(value: unknown): {field: string; reason: string} {
	try {
		checkVmmEnvironment('vmmEnvironment', value);
	} catch (error) {
		expect(error).toBeInstanceOf(InvalidConfigError);
		const {field, reason} = error as InvalidConfigError;
		return {field, reason};
	}

	throw new Error('accepted');
}

describe('defaultVmmEnvironment', () => {
	test('passes the path, user, locale and time zone, Rust\'s switches and what is named for a VMM, and nothing else', () => {
		const host = {PATH: '/usr/bin', HOME: '/home/a', USER: 'a', LOGNAME: 'a', LANG: 'C.UTF-8', LC_ALL: 'C', TMPDIR: '/tmp', TZ: 'UTC', RUST_LOG: 'info', RUST_BACKTRACE: '1', CROSVM_SIM_BUILD: 'aosp-2022', QEMU_AUDIO_DRV: 'none', AWS_SECRET_ACCESS_KEY: 'secret', NODE_OPTIONS: '--require x', LD_PRELOAD: '/x.so', MY_CROSVM_TOKEN: 'x', crosvm_lower: 'x', CROSVM: 'no underscore', RUST_LOG_STYLE: 'x'};
		expect(defaultVmmEnvironment(host)).toEqual({PATH: '/usr/bin', HOME: '/home/a', USER: 'a', LOGNAME: 'a', LANG: 'C.UTF-8', LC_ALL: 'C', TMPDIR: '/tmp', TZ: 'UTC', RUST_LOG: 'info', RUST_BACKTRACE: '1', CROSVM_SIM_BUILD: 'aosp-2022', QEMU_AUDIO_DRV: 'none'});
		expect(PASSED_HOST_VARIABLES.every(name => name in defaultVmmEnvironment(host))).toBe(true);
		expect(PASSED_HOST_PREFIXES).toEqual(['CROSVM_', 'QEMU_']);
	});

	test('leaves out what the host does not set, and is frozen', () => {
		const environment = defaultVmmEnvironment({PATH: '/bin', SECRET: 'x'});
		expect(environment).toEqual({PATH: '/bin'});
		expect(Object.isFrozen(environment)).toBe(true);
	});

	test('a variable the host lists without a value is left out, not passed as "undefined"', () => {
		expect(defaultVmmEnvironment({PATH: undefined, HOME: '/home/a'})).toEqual({HOME: '/home/a'});
		expect(Object.keys(defaultVmmEnvironment({PATH: undefined}))).toEqual([]);
	});

	test('reads this process environment by default', () => {
		expect(defaultVmmEnvironment()['PATH']).toBe(process.env['PATH']);
	});
});

describe('checkVmmEnvironment', () => {
	test('returns a frozen copy: later changes to the caller object do not reach the VMMs', () => {
		const given: Record<string, string> = {PATH: '/bin', RUST_LOG: 'debug', _X1: ''};
		const checked = checkVmmEnvironment('vmmEnvironment', given);
		given['RUST_LOG'] = 'trace';
		given['LD_PRELOAD'] = '/x.so';
		expect(checked).toEqual({PATH: '/bin', RUST_LOG: 'debug', _X1: ''});
		expect(Object.isFrozen(checked)).toBe(true);
	});

	test('accepts an object without a prototype and an empty one', () => {
		expect(checkVmmEnvironment('vmmEnvironment', Object.assign(Object.create(null) as object, {A: 'b'}))).toEqual({A: 'b'});
		expect(checkVmmEnvironment('vmmEnvironment', {})).toEqual({});
	});

	test.each([
		['a string', 'PATH=/bin'],
		['null', null],
		['an array', [['PATH', '/bin']]],
		['a number', 3],
	])('refuses %s as a whole, naming the field', (_what, value) => {
		expect(refusal(value)).toEqual({field: 'vmmEnvironment', reason: 'must be an object of variable names to string values'});
	});

	test('refuses a class instance or a Map', () => {
		expect(refusal(new Map([['PATH', '/bin']]))).toEqual({field: 'vmmEnvironment', reason: 'must be a plain object'});
		expect(refusal(new (class Environment {
			PATH = '/bin';
		})())).toEqual({field: 'vmmEnvironment', reason: 'must be a plain object'});
	});

	test.each(['1PATH', 'A=B', 'A-B', 'A B', 'É', ''])('refuses the variable name %j, naming it', name => {
		const {field, reason} = refusal({[name]: 'x'});
		expect(field).toBe(`vmmEnvironment.${name}`);
		expect(reason).toMatch(/^is not a variable name/);
	});

	test('a name of 255 bytes is a name; one of 256 is refused, and the field names only its start', () => {
		expect(Object.keys(checkVmmEnvironment('vmmEnvironment', {['A'.repeat(255)]: 'x'}))).toEqual(['A'.repeat(255)]);
		const {field, reason} = refusal({['A'.repeat(256)]: 'x'});
		expect(field).toBe(`vmmEnvironment.${'A'.repeat(64)}`);
		expect(reason).toMatch(/^is not a variable name/);
	});

	test('refuses a value that is not a string, naming the variable', () => {
		expect(refusal({PATH: '/bin', DEBUG: 1})).toEqual({field: 'vmmEnvironment.DEBUG', reason: 'must be a string'});
		expect(refusal({DEBUG: undefined})).toEqual({field: 'vmmEnvironment.DEBUG', reason: 'must be a string'});
	});

	test('refuses a getter and a hidden variable without running the getter', () => {
		let read = 0;
		const withGetter = Object.defineProperty({}, 'PATH', {
			enumerable: true,
			get() {
				read++;
				return '/bin';
			},
		});
		expect(refusal(withGetter)).toEqual({field: 'vmmEnvironment.PATH', reason: 'must be a plain enumerable value, not a getter'});
		expect(read).toBe(0);
		expect(refusal(Object.defineProperty({}, 'HIDDEN', {value: 'x', enumerable: false}))).toEqual({field: 'vmmEnvironment.HIDDEN', reason: 'must be a plain enumerable value, not a getter'});
	});

	test('refuses a NUL byte, which would cut the value short', () => {
		expect(refusal({PATH: '/bin\0/evil'})).toEqual({field: 'vmmEnvironment.PATH', reason: 'must not contain a NUL byte'});
	});

	test(`at most ${VMM_ENVIRONMENT_LIMITS.variables} variables`, () => {
		const variables = (count: number) => Object.fromEntries(Array.from({length: count}, (_, index) => [`V${index}`, '']));
		expect(Object.keys(checkVmmEnvironment('vmmEnvironment', variables(VMM_ENVIRONMENT_LIMITS.variables)))).toHaveLength(VMM_ENVIRONMENT_LIMITS.variables);
		expect(refusal(variables(VMM_ENVIRONMENT_LIMITS.variables + 1))).toEqual({field: 'vmmEnvironment', reason: `has ${VMM_ENVIRONMENT_LIMITS.variables + 1} variables, more than ${VMM_ENVIRONMENT_LIMITS.variables}`});
	});

	test('at most 128 KiB in all, each NAME=value counted with its NUL, in bytes rather than characters', () => {
		const limit = VMM_ENVIRONMENT_LIMITS.totalBytes;
		// "A=" + value + NUL: exactly the limit, then one byte more.
		expect(checkVmmEnvironment('vmmEnvironment', {A: 'x'.repeat(limit - 3)})['A']).toHaveLength(limit - 3);
		expect(refusal({A: 'x'.repeat(limit - 2)})).toEqual({field: 'vmmEnvironment', reason: `is more than ${limit} bytes`});
		// Two bytes per character in UTF-8: half as many characters fit.
		expect(refusal({A: 'é'.repeat((limit / 2) - 1)})).toEqual({field: 'vmmEnvironment', reason: `is more than ${limit} bytes`});
		// Summed over the variables.
		expect(refusal({A: 'x'.repeat(limit / 2), B: 'x'.repeat(limit / 2)})).toEqual({field: 'vmmEnvironment', reason: `is more than ${limit} bytes`});
	});

	test('a huge value is refused as too big, before its bytes are searched', () => {
		expect(refusal({A: `${'x'.repeat(64 * 1024 * 1024)}\0`})).toEqual({field: 'vmmEnvironment', reason: `is more than ${VMM_ENVIRONMENT_LIMITS.totalBytes} bytes`});
	});

	test('refuses a proxy before any of its traps runs', () => {
		let trapped = 0;
		const proxy = new Proxy({PATH: '/bin'}, {
			ownKeys(target) {
				trapped++;
				return Reflect.ownKeys(target);
			},
			getPrototypeOf(target) {
				trapped++;
				return Reflect.getPrototypeOf(target);
			},
		});
		expect(refusal(proxy)).toEqual({field: 'vmmEnvironment', reason: 'must be a plain object, not a proxy'});
		const revoked = Proxy.revocable({PATH: '/bin'}, {});
		revoked.revoke();
		expect(refusal(revoked.proxy)).toEqual({field: 'vmmEnvironment', reason: 'must be a plain object, not a proxy'});
		expect(trapped).toBe(0);
	});

	test.each(['toJSON', '__proto__'])('refuses the name %s, which it keeps for itself', name => {
		const value = JSON.parse(`{"${name}": "x", "PATH": "/bin"}`) as unknown;
		expect(refusal(value).field).toBe(`vmmEnvironment.${name}`);
		expect(refusal(value).reason).toMatch(/^is a name vmwarden keeps for itself/);
	});
});

describe('what an environment shows of itself', () => {
	test('serialized, it names its variables and holds none of their values', () => {
		const checked = checkVmmEnvironment('vmmEnvironment', {PATH: '/bin', API_TOKEN: 'hunter2'});
		expect(JSON.stringify(checked)).toBe('{"variables":["PATH","API_TOKEN"]}');
		expect(JSON.stringify({input: defaultVmmEnvironment({PATH: '/usr/bin', CROSVM_TOKEN: 'hunter2'})})).toBe('{"input":{"variables":["PATH","CROSVM_TOKEN"]}}');
	});

	test('a spread and a structured clone (what the spawner process is sent) see the variables alone', () => {
		const checked = checkVmmEnvironment('vmmEnvironment', {PATH: '/bin', A: 'b'});
		expect(Object.keys({...checked})).toEqual(['PATH', 'A']);
		expect(structuredClone(checked)).toEqual({PATH: '/bin', A: 'b'});
	});
});
