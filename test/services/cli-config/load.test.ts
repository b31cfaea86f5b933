import {execFileSync} from 'node:child_process';
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterEach, beforeEach, describe, expect, test} from '@jest/globals';
import {ConfigFileError, InvalidConfigError} from '../../../src/errors.js';
import {loadConfigFile, configFromRequest, parseConfigFile} from '../../../src/services/cli-config/load.js';
import {rustVersionReq} from '../../../src/services/cli-config/android.js';
import {MAX_CONFIG_FILE_BYTES} from '../../../src/services/cli-config/read.js';

let dir: string;
beforeEach(() => {
	dir = mkdtempSync(join(tmpdir(), 'vmw-cli-config-'));
	writeFileSync(join(dir, 'kernel'), '#!crosvm-sim-guest\npoweroff\n');
	writeFileSync(join(dir, 'disk.img'), '');
});
afterEach(() => {
	rmSync(dir, {recursive: true, force: true});
});

function file(name: string, content: unknown): string {
	const path = join(dir, name);
	writeFileSync(path, typeof content === 'string' || Buffer.isBuffer(content) ? content : JSON.stringify(content));
	return path;
}

async function refusal(promise: Promise<unknown>): Promise<{field: string; reason: string}> {
	const error = await promise.then(() => undefined, (caught: unknown) => caught);
	expect(error).toBeInstanceOf(InvalidConfigError);
	const {field, reason} = error as InvalidConfigError;
	return {field, reason};
}

describe('vmwarden\'s format', () => {
	test('maps to a VmConfig with paths relative to the file resolved, and $schema dropped', async () => {
		const loaded = await loadConfigFile(file('vm.json', {$schema: 'x', kernel: 'kernel', disks: [{image: './disk.img', writable: false}], memoryMib: 64, taskProfiles: ['a']}));
		expect(loaded).toEqual({format: 'vmwarden', config: {kernel: join(dir, 'kernel'), disks: [{image: join(dir, 'disk.img'), writable: false}], memoryMib: 64, taskProfiles: ['a']}});
	});

	test.each([
		[{kernel: 'kernel', memoryMib: 0}, 'memoryMib', 'must be a positive integer'],
		[{kernel: 'kernel', bogus: 1}, 'bogus', 'is not a VmConfig field'],
		[{params: 'x'}, 'kernel', 'VM must have either a bootloader or a kernel image.'],
		[{kernel: 'kernel', bootloader: 'kernel'}, 'kernel', 'Can\'t have both bootloader and kernel/initrd image.'],
		[{kernel: 'missing'}, 'kernel', 'does not exist'],
		[{kernel: 'kernel', disks: [{image: 'disk.img'}]}, 'disks[0].writable', 'must be a boolean'],
		[{kernel: 'kernel', kernelx: 3}, 'kernelx', 'is not a VmConfig field'],
		[{kernel: 5}, 'kernel', 'bare number'],
		[{kernel: 'kernel', platformVersion: '~2.0'}, 'platformVersion', 'Incompatible platform version'],
	])('refuses %j naming the field', async (config, field, reason) => {
		const refused = await refusal(loadConfigFile(file('vm.json', config)));
		expect(refused.field).toBe(field);
		expect(refused.reason).toContain(reason);
	});

	test('a "__proto__" key stays a key, and is refused', async () => {
		// Written as text: in an object literal __proto__ sets the prototype, which JSON.stringify drops.
		const refused = await refusal(loadConfigFile(file('vm.json', '{"kernel":"kernel","__proto__":{"detectHangup":true}}')));
		expect(refused).toEqual({field: '__proto__', reason: 'is not a VmConfig field'});
	});
});

describe('Android\'s vm_config.json', () => {
	test('maps snake_case fields, drops name, and reads the platform version as Rust does', async () => {
		const loaded = await loadConfigFile(file('vm_config.json', {name: 'x', kernel: 'kernel', initrd: null, params: 'a=b', disks: [{image: 'disk.img', writable: false, partitions: []}], protected: false, memory_mib: 128, platform_version: '1.0', task_profiles: ['SCHED_SP_TOP_APP']}));
		expect(loaded.format).toBe('android');
		expect(loaded.config).toEqual({kernel: join(dir, 'kernel'), params: 'a=b', disks: [{image: join(dir, 'disk.img'), writable: false}], protected: false, memoryMib: 128, platformVersion: '^1.0', taskProfiles: ['SCHED_SP_TOP_APP']});
	});

	test('Rust version requirements become npm ranges', () => {
		expect(rustVersionReq('1.0')).toBe('^1.0');
		expect(rustVersionReq('>=1.0, <2.0')).toBe('>=1.0 <2.0');
		expect(rustVersionReq('~1.0')).toBe('~1.0');
		expect(rustVersionReq('*')).toBe('*');
	});

	test.each([
		[{kernel: 'kernel', disks: [{partitions: [{label: 'a', path: 'disk.img'}], writable: false}], platform_version: '~1.0'}, 'disks[0].partitions', 'not supported'],
		[{kernel: 'kernel', disks: [{image: 'disk.img', partitions: [{label: 'a', path: 'disk.img'}], writable: false}], platform_version: '~1.0'}, 'disks[0]', 'Exactly one of image and partitions'],
		[{kernel: 'kernel', disks: [{image: 'disk.img'}], platform_version: '~1.0'}, 'disks[0].writable', 'is missing'],
		[{kernel: 'kernel', memory_mib: 128}, 'platform_version', 'is missing'],
		[{kernel: 'kernel', memory_mib: -1, platform_version: '~1.0'}, 'memory_mib', 'must be a positive integer'],
		[{kernel: 'kernel', task_profiles: ['a,b'], platform_version: '~1.0'}, 'task_profiles[0]', 'must not contain a comma'],
		[{kernel: 'kernel', cpu_topology: 'match_host', platform_version: '~1.0'}, 'cpu_topology', 'not supported'],
		[{kernel: 'kernel', gibberish_field: 1, platform_version: '~1.0'}, 'gibberish_field', 'is not a field of Android'],
		[{kernel: 'kernel', platform_version: '~2.0'}, 'platform_version', 'Incompatible platform version'],
	])('refuses %j naming the Android field', async (config, field, reason) => {
		const refused = await refusal(loadConfigFile(file('vm_config.json', config), {format: 'android'}));
		expect(refused.field).toBe(field);
		expect(refused.reason).toContain(reason);
	});
});

describe('the file itself', () => {
	test.each([
		['not JSON', () => file('a.json', '{kernel:'), 'is not JSON'],
		['missing', () => join(dir, 'none.json'), 'ENOENT'],
		['a directory', () => dir, 'is not a regular file'],
		['over the bound', () => file('big.json', `{"params":"${'x'.repeat(MAX_CONFIG_FILE_BYTES)}"}`), `at most ${MAX_CONFIG_FILE_BYTES}`],
		['not UTF-8', () => file('latin.json', Buffer.from([0x7B, 0xE9, 0x7D])), 'not UTF-8'],
	])('%s: a ConfigFileError', async (_what, make, reason) => {
		const error = await loadConfigFile(make()).then(() => undefined, (caught: unknown) => caught);
		expect(error).toBeInstanceOf(ConfigFileError);
		expect((error as ConfigFileError).reason).toContain(reason);
	});

	test('a FIFO is refused without waiting for a writer', async () => {
		const fifo = join(dir, 'fifo');
		execFileSync('mkfifo', [fifo]);
		const error = await loadConfigFile(fifo).then(() => undefined, (caught: unknown) => caught);
		expect((error as ConfigFileError).reason).toBe('is not a regular file');
	});

	test('parseConfigFile maps without validating: the daemon validates', async () => {
		const {config} = await parseConfigFile(file('vm.json', {kernel: 'missing'}));
		expect(config).toEqual({kernel: join(dir, 'missing')});
	});
});

describe('a config sent to the daemon', () => {
	test('keeps absolute paths and refuses a relative one', () => {
		expect(configFromRequest({kernel: '/k', disks: [{image: '/d', writable: true}]})).toEqual({kernel: '/k', disks: [{image: '/d', writable: true}]});
		expect(() => configFromRequest({kernel: '/k', disks: [{image: 'd', writable: true}]})).toThrow(expect.objectContaining({field: 'disks[0].image'}));
	});
});
