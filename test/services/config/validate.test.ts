import {closeSync, existsSync, openSync} from 'node:fs';
import {open} from 'node:fs/promises';
import {join} from 'node:path';
import {validateConfig} from '../../../src/services/config/validate.js';
import type {FilePolicy} from '../../../src/services/config/file-policy.js';
import type {VmConfig} from '../../../src/services/config/vm-config.js';
import {expectInvalid} from '../../helpers/expect-invalid.js';
import {makeFixtureFiles} from '../../helpers/fixture-files.js';

const {dir, kernel, image, directory, remove} = makeFixtureFiles('vmwarden-validate-');

afterAll(remove);

const invalid = (config: unknown, field: string, reason: string, policy?: FilePolicy): void => {
	expectInvalid(() => validateConfig(config as VmConfig, policy), field, reason);
};

const hostDescriptors: FilePolicy = {allowHostDescriptors: true};

describe('a valid config passes', () => {
	test('every field set, paths and descriptors', () => {
		const fd = openSync(image, 'r+');
		try {
			expect(() => validateConfig({
				kernel,
				initrd: kernel,
				disks: [{image, writable: false}, {image: fd, writable: true}],
				params: 'console=hvc0',
				protected: false,
				memoryMib: 1024,
				cpus: 2,
				cpuAffinity: '0,1-3',
				taskProfiles: ['SCHED_SP_TOP_APP'],
				consoleOutput: join(dir, 'console.txt'),
				logOutput: join(dir, 'log.txt'),
				indirectFiles: [image],
				platformVersion: '~1.0',
				detectHangup: true,
			}, {createOutputs: true, allowHostDescriptors: true})).not.toThrow();
		} finally {
			closeSync(fd);
		}
	});

	test('validation creates nothing: console and log files are made only when opened', () => {
		validateConfig({kernel, consoleOutput: join(dir, 'new-console.txt')}, {createOutputs: true});
		expect(existsSync(join(dir, 'new-console.txt'))).toBe(false);
	});
});

describe('the reference\'s rules', () => {
	test('neither bootloader nor kernel', () => {
		invalid({initrd: kernel}, 'kernel', 'VM must have either a bootloader or a kernel image.');
	});

	test('bootloader with kernel', () => {
		invalid({bootloader: kernel, kernel}, 'kernel', 'Can\'t have both bootloader and kernel/initrd image.');
	});

	test('bootloader with initrd', () => {
		invalid({bootloader: kernel, initrd: kernel}, 'initrd', 'Can\'t have both bootloader and kernel/initrd image.');
	});

	test.each(['^2.0.0', '>1.0.0', '~0.9', '1.1.x'])('platform version %s does not match 1.0.0', range => {
		invalid(
			{kernel, platformVersion: range},
			'platformVersion',
			`Incompatible platform version. The config is compatible with platform version(s) ${range}, but the actual platform version is 1.0.0`,
		);
	});

	test.each(['*', '1.0.0', '^1', '~1.0', '>=0.9 <2', '1.x'])('platform version %s matches 1.0.0', range => {
		expect(() => validateConfig({kernel, platformVersion: range})).not.toThrow();
	});

	test('an unparsable platform version range', () => {
		invalid({kernel, platformVersion: 'one point oh'}, 'platformVersion', '"one point oh" is not a valid semver range');
	});
});

describe('counts', () => {
	test.each([0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '512'])('memoryMib %p', memoryMib => {
		invalid({kernel, memoryMib}, 'memoryMib', 'must be a positive integer');
	});

	test.each([0, -2, 0.5, '2'])('cpus %p', cpus => {
		invalid({kernel, cpus}, 'cpus', 'must be a positive integer');
	});

	test('counts that do not fit the reference\'s NonZeroU32', () => {
		invalid({kernel, memoryMib: 2 ** 32}, 'memoryMib', 'must be at most 4294967295');
		expect(() => validateConfig({kernel, memoryMib: 2 ** 32 - 1})).not.toThrow();
	});
});

describe('cpuAffinity: crosvm\'s grammar', () => {
	test.each([
		['3-1', 'invalid value "3-1": CPU ranges must be from low to high'],
		['0,', 'invalid value "": CPU index must be a non-negative integer'],
		['', 'invalid value "": CPU index must be a non-negative integer'],
		['0=0,1=1', 'invalid value "0=0,1=1": invalid VCPU assignment syntax'],
		['0=0:0=1', 'invalid value "0=1": VCPU index must be unique'],
		['1-2-3', 'invalid value "1-2-3": invalid list syntax'],
		[' 1', 'invalid value " 1": CPU index must be a non-negative integer'],
	])('%p is rejected', (cpuAffinity, reason) => {
		invalid({kernel, cpuAffinity}, 'cpuAffinity', reason);
	});

	test.each(['0', '0,1-3,5', '0=0:1=1-2', '+1'])('%p is accepted', cpuAffinity => {
		expect(() => validateConfig({kernel, cpuAffinity})).not.toThrow();
	});
});

describe('task profile names', () => {
	test('empty', () => {
		invalid({kernel, taskProfiles: ['ok', '']}, 'taskProfiles[1]', 'must not be empty');
	});

	test('a comma would smuggle in another profile', () => {
		invalid({kernel, taskProfiles: ['a,b']}, 'taskProfiles[0]', 'must not contain a comma');
	});

	test.each(['a b', 'a\tb', 'a\nb', ' a'])('white space in %p', name => {
		invalid({kernel, taskProfiles: [name]}, 'taskProfiles[0]', 'must not contain white space');
	});
});

describe('NUL bytes', () => {
	test.each<[string, (nul: string) => unknown]>([
		['params', nul => ({kernel, params: `console=${nul}`})],
		['kernel', nul => ({kernel: `${kernel}${nul}`})],
		['disks[1].image', nul => ({kernel, disks: [{image, writable: false}, {image: `${image}${nul}x`, writable: true}]})],
		['consoleOutput', nul => ({kernel, consoleOutput: `${nul}`})],
		['indirectFiles[0]', nul => ({kernel, indirectFiles: [`${image}${nul}`]})],
		['taskProfiles[0]', nul => ({kernel, taskProfiles: [`a${nul}`]})],
		['cpuAffinity', nul => ({kernel, cpuAffinity: `0${nul}`})],
		['platformVersion', nul => ({kernel, platformVersion: `*${nul}`})],
	])('in %s', (field, config) => {
		invalid(config('\0'), field, 'contains a NUL byte');
	});
});

describe('paths that cannot be opened with the needed access (failing for root too)', () => {
	test('a missing kernel', () => {
		const missing = join(dir, 'missing');
		invalid({kernel: missing}, 'kernel', `${JSON.stringify(missing)} does not exist`);
	});

	test('a directory as a disk', () => {
		invalid({kernel, disks: [{image, writable: false}, {image: directory, writable: false}]}, 'disks[1].image', `${JSON.stringify(directory)} is a directory`);
	});

	test('a directory as a writable disk', () => {
		invalid({kernel, disks: [{image: directory, writable: true}]}, 'disks[0].image', `${JSON.stringify(directory)} is a directory`);
	});

	test('a read-only sysfs file is a readable disk (the write permission is the open\'s to refuse: see descriptors.test.ts)', () => {
		expect(() => validateConfig({kernel, disks: [{image: '/sys/kernel/notes', writable: false}]})).not.toThrow();
	});

	test('a path under a non-directory', () => {
		const under = join(kernel, 'initrd');
		invalid({kernel, initrd: under}, 'initrd', `${JSON.stringify(under)} does not exist: a component of the path is not a directory`);
	});

	test('an indirect file that does not exist', () => {
		const missing = join(dir, 'missing-idsig');
		invalid({kernel, indirectFiles: [image, image, missing]}, 'indirectFiles[2]', `${JSON.stringify(missing)} does not exist`);
	});

	test('a console output in a directory that does not exist', () => {
		const path = join(dir, 'no-such-dir', 'console.txt');
		invalid({kernel, consoleOutput: path}, 'consoleOutput', `${JSON.stringify(path)} cannot be created: its directory does not exist`, {createOutputs: true});
		invalid({kernel, consoleOutput: path}, 'consoleOutput', `${JSON.stringify(path)} does not exist, and the file policy does not let vmwarden create outputs`);
	});

	test('a log output that is a directory', () => {
		invalid({kernel, logOutput: directory}, 'logOutput', `${JSON.stringify(directory)} is a directory`);
	});

	test('a log output under a non-directory', () => {
		const path = join(kernel, 'log.txt');
		invalid({kernel, logOutput: path}, 'logOutput', `${JSON.stringify(path)} does not exist: a component of the path is not a directory`);
	});

	test('an empty path', () => {
		invalid({kernel: ''}, 'kernel', 'must not be an empty path');
	});
});

describe('descriptors', () => {
	test('a numeric descriptor that is not open', () => {
		const fd = openSync(image, 'r');
		closeSync(fd);
		invalid({kernel, disks: [{image: fd, writable: false}]}, 'disks[0].image', `descriptor ${fd} is not open`, hostDescriptors);
	});

	test('a read-only descriptor as a writable disk', () => {
		const fd = openSync(image, 'r');
		try {
			invalid({kernel, disks: [{image: fd, writable: true}]}, 'disks[0].image', `descriptor ${fd} is not open for reading and writing`, hostDescriptors);
		} finally {
			closeSync(fd);
		}
	});

	test('a write-only descriptor as a kernel', () => {
		const fd = openSync(join(dir, 'write-only'), 'w');
		try {
			invalid({kernel: fd}, 'kernel', `descriptor ${fd} is not open for reading`, hostDescriptors);
		} finally {
			closeSync(fd);
		}
	});

	test('a closed FileHandle', async () => {
		const handle = await open(kernel, 'r');
		await handle.close();
		expect(handle.fd).toBe(-1);
		invalid({kernel: handle}, 'kernel', 'the FileHandle is closed');
	});

	test('an open FileHandle passes', async () => {
		const handle = await open(kernel, 'r');
		try {
			expect(() => validateConfig({kernel: handle})).not.toThrow();
		} finally {
			await handle.close();
		}
	});

	test('a negative or fractional descriptor number', () => {
		invalid({kernel: -1}, 'kernel', 'must be a non-negative integer when it is a descriptor');
		invalid({kernel: 3.5}, 'kernel', 'must be a non-negative integer when it is a descriptor');
	});
});

describe('wrong types', () => {
	test.each<[unknown, string, string]>([
		[{kernel, disks: {image}}, 'disks', 'must be an array'],
		[{kernel, disks: [{image, writable: 'yes'}]}, 'disks[0].writable', 'must be a boolean'],
		[{kernel, disks: [{image}]}, 'disks[0].writable', 'must be a boolean'],
		[{kernel, disks: [image]}, 'disks[0]', 'must be an object {image, writable}'],
		[{kernel, disks: [{image, writable: true}, {image: {path: image}, writable: true}]}, 'disks[1].image', 'must be a path, an open descriptor number or a FileHandle'],
		[{kernel: Buffer.from(kernel)}, 'kernel', 'must be a path, an open descriptor number or a FileHandle'],
		[{kernel, params: ['a']}, 'params', 'must be a string'],
		[{kernel, protected: 1}, 'protected', 'must be a boolean'],
		[{kernel, detectHangup: 'true'}, 'detectHangup', 'must be a boolean'],
		[{kernel, cpuAffinity: 3}, 'cpuAffinity', 'must be a string'],
		[{kernel, taskProfiles: 'a'}, 'taskProfiles', 'must be an array'],
		[{kernel, taskProfiles: [1]}, 'taskProfiles[0]', 'must be a string'],
		[{kernel, indirectFiles: image}, 'indirectFiles', 'must be an array'],
		[{kernel, indirectFiles: [image, image, null]}, 'indirectFiles[2]', 'must be a path, an open descriptor number or a FileHandle'],
		[{kernel, platformVersion: 1}, 'platformVersion', 'must be a string'],
		[{kernel, memoryMB: 512}, 'memoryMB', 'is not a VmConfig field'],
		[null, 'config', 'must be an object'],
		[[kernel], 'config', 'must be an object'],
	])('%p', (config, field, reason) => {
		invalid(config, field, reason);
	});
});

describe('only plain data: nothing inherited, no getters, no prototype tricks', () => {
	test('a parsed "__proto__" key is a stranger, not a prototype', () => {
		const parsed = JSON.parse(`{"kernel": ${JSON.stringify(kernel)}, "__proto__": {"consoleOutput": "/etc/passwd"}}`) as VmConfig;
		invalid(parsed, '__proto__', 'is not a VmConfig field');
	});

	test('a field inherited from a polluted Object.prototype', () => {
		const prototype = Object.prototype as Record<string, unknown>;
		prototype['consoleOutput'] = '/etc/passwd';
		try {
			invalid({kernel}, 'consoleOutput', 'is inherited from Object.prototype, not set on the object itself');
			invalid({kernel, disks: [{image, writable: false}]}, 'consoleOutput', 'is inherited from Object.prototype, not set on the object itself');
		} finally {
			delete prototype['consoleOutput'];
		}
	});

	test('an object made from another prototype', () => {
		invalid(Object.create({kernel}) as VmConfig, 'config', 'must be a plain object');
		invalid({kernel, disks: [Object.create({image, writable: true}) as unknown]}, 'disks[0]', 'must be a plain object');
	});

	test('a getter, which could answer validation and the command builder differently', () => {
		invalid({kernel, get params() {
			return 'quiet';
		}}, 'params', 'must be a plain value, not a getter');
	});

	test('a symbol key, which no field is', () => {
		invalid({kernel, [Symbol('params')]: 'quiet'}, 'Symbol(params)', 'is not a VmConfig field');
	});

	test('a hidden (non-enumerable) getter', () => {
		const config = {kernel};
		Object.defineProperty(config, 'consoleOutput', {get: () => '/etc/passwd', enumerable: false});
		invalid(config, 'consoleOutput', 'must be a plain value, not a getter');
	});

	test('a stranger in a disk', () => {
		invalid({kernel, disks: [{image, writable: false, cache: 'none'}]}, 'disks[0].cache', 'is not a DiskConfig field');
	});

	test('a proxy, refused before any of its traps runs', () => {
		const trapsThrow = new Proxy({}, {
			get() {
				return () => {
					throw new Error('a trap ran');
				};
			},
		});
		invalid(new Proxy({kernel}, trapsThrow), 'config', 'must be a plain object, not a proxy');
		const revocable = Proxy.revocable({kernel}, {});
		revocable.revoke();
		invalid(revocable.proxy, 'config', 'must be a plain object, not a proxy');
		invalid({kernel, disks: [new Proxy({image, writable: false}, trapsThrow)]}, 'disks[0]', 'must be a plain object, not a proxy');
		invalid({kernel, capture: new Proxy({console: true}, trapsThrow)}, 'capture', 'must be a plain object, not a proxy');
		invalid({kernel, disks: new Proxy([], trapsThrow)}, 'disks', 'must be a plain array, not a proxy');
		invalid({kernel, taskProfiles: new Proxy(['a'], {})}, 'taskProfiles', 'must be a plain array, not a proxy');
		// A revoked proxy of a function: Array.isArray would throw a TypeError on it.
		const revokedFunction = Proxy.revocable(() => undefined, {});
		revokedFunction.revoke();
		invalid({kernel, disks: revokedFunction.proxy}, 'disks', 'must be a plain array, not a proxy');
	});

	test('an array that would show validation other elements than the command builder reads', () => {
		const disks = [{image, writable: false}];
		Object.defineProperty(disks, 'entries', {value: () => [].entries(), enumerable: false});
		invalid({kernel, disks}, 'disks.entries', 'is not an array element: a plain array has only its elements');
		const files = ['/dev/null'];
		Object.defineProperty(files, 0, {get: () => '/etc/shadow'});
		invalid({kernel, indirectFiles: files}, 'indirectFiles[0]', 'must be a plain value, not a getter');
		// for-of (the command builder's taskProfiles loop) asks the array's own iterator first.
		const profiles = ['ok'];
		Object.defineProperty(profiles, Symbol.iterator, {value: ['a,b', 'has space'][Symbol.iterator].bind(['a,b', 'has space'])});
		invalid({kernel, taskProfiles: profiles}, 'taskProfiles.Symbol(Symbol.iterator)', 'is not an array element: a plain array has only its elements');
		const beyond = ['/dev/null'];
		Object.defineProperty(beyond, '4294967295', {value: '/etc/shadow'});
		invalid({kernel, indirectFiles: beyond}, 'indirectFiles.4294967295', 'is not an array element: a plain array has only its elements');
		class Profiles extends Array<string> {}
		invalid({kernel, taskProfiles: Profiles.from(['a'])}, 'taskProfiles', 'must be a plain array');
		invalid({kernel, taskProfiles: Object.setPrototypeOf(['a'], null) as string[]}, 'taskProfiles', 'must be a plain array');
	});

	test('a null-prototype config is plain data', () => {
		expect(() => validateConfig(Object.assign(Object.create(null) as VmConfig, {kernel}))).not.toThrow();
	});
});
