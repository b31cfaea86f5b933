import {join} from 'node:path';
import type {InvalidConfigError} from '../../../src/errors.js';
import {checkArgvSize, CONFIG_LIMITS, MAX_ARGUMENT_BYTES, MAX_ARGV_BYTES} from '../../../src/services/config/bounds.js';
import {validateConfig} from '../../../src/services/config/validate.js';
import type {VmConfig} from '../../../src/services/config/vm-config.js';
import {crosvmCommand} from '../../../src/services/crosvm/command.js';
import {qemuCommand} from '../../../src/services/qemu/command.js';
import {expectInvalid} from '../../helpers/expect-invalid.js';
import {makeFixtureFiles} from '../../helpers/fixture-files.js';
import {openDescriptors as descriptorsOfThisProcess} from '../../helpers/leak-checker.js';

const {dir, kernel, image, remove} = makeFixtureFiles('vmwarden-bounds-');

afterAll(remove);

let descriptorsBefore: Map<number, string>;

beforeEach(() => {
	descriptorsBefore = descriptorsOfThisProcess();
});

afterEach(() => {
	expect(descriptorsOfThisProcess()).toEqual(descriptorsBefore);
});

// Linux's MAX_ARG_STRLEN: execve refuses one argument this long (with its NUL) with E2BIG.
const MAX_ARG_STRLEN = 128 * 1024;

const invalid = (config: unknown, field: string, reason: string): void => {
	expectInvalid(() => validateConfig(config as VmConfig), field, reason);
};

describe('sizes are refused before any file is looked at', () => {
	const missing = join(dir, 'missing');

	test('params over 64 KiB, counted in UTF-8 bytes (the 128 KiB params that made spawn fail with E2BIG)', () => {
		invalid({kernel: missing, params: 'x'.repeat(128 * 1024 + 1)}, 'params', 'is longer than 65536 bytes');
		invalid({kernel: missing, params: '€'.repeat(30_000)}, 'params', 'is longer than 65536 bytes');
		expect(() => validateConfig({kernel, params: 'x'.repeat(CONFIG_LIMITS.paramsBytes)})).not.toThrow();
	});

	test('a huge string or path is refused by its length', () => {
		invalid({kernel: missing, params: 'x'.repeat(64 * 1024 * 1024)}, 'params', 'is longer than 65536 bytes');
		invalid({kernel: `/${'a'.repeat(CONFIG_LIMITS.pathBytes)}`}, 'kernel', 'is longer than 4095 bytes');
	});

	test.each<[string, (count: number) => Partial<VmConfig>, number]>([
		['disks', count => ({disks: Array.from({length: count}, () => ({image: missing, writable: false}))}), CONFIG_LIMITS.disks],
		['indirectFiles', count => ({indirectFiles: Array.from({length: count}, () => missing)}), CONFIG_LIMITS.indirectFiles],
		['taskProfiles', count => ({taskProfiles: Array.from({length: count}, () => 'SCHED_SP_TOP_APP')}), CONFIG_LIMITS.taskProfiles],
	])('%s: more entries than the limit, even when each would fail alone', (field, make, limit) => {
		invalid({kernel, ...make(limit + 1)}, field, `has ${limit + 1} entries: at most ${limit}`);
	});

	test('a sparse array of four billion disks is refused by its length, not walked', () => {
		invalid({kernel, disks: new Array(2 ** 32 - 1)}, 'disks', `has ${2 ** 32 - 1} entries: at most ${CONFIG_LIMITS.disks}`);
	});

	test.each<[string, Partial<VmConfig>, string]>([
		['cpuAffinity', {cpuAffinity: `0${',0'.repeat(2048)}`}, 'is longer than 4096 bytes'],
		['platformVersion', {platformVersion: `${'1 || '.repeat(52)}1`}, 'is longer than 256 bytes'],
		['taskProfiles[0]', {taskProfiles: ['P'.repeat(257)]}, 'is longer than 256 bytes'],
	])('%s', (field, config, reason) => {
		invalid({kernel, ...config}, field, reason);
	});
});

describe('the VMM\'s argv stays inside what execve takes', () => {
	test('the largest config vmwarden accepts makes an argv well below Linux\'s limits', () => {
		const config: VmConfig = {
			kernel,
			params: `-${'x'.repeat(CONFIG_LIMITS.paramsBytes - 1)}`.replace(/x$/, '='),
			cpuAffinity: '0'.repeat(CONFIG_LIMITS.cpuAffinityBytes),
			taskProfiles: Array.from({length: CONFIG_LIMITS.taskProfiles}, () => 'P'.repeat(CONFIG_LIMITS.taskProfileBytes)),
			disks: Array.from({length: CONFIG_LIMITS.disks}, () => ({image, writable: false})),
			indirectFiles: Array.from({length: CONFIG_LIMITS.indirectFiles}, () => image),
		};
		for (const dialect of ['current', 'aosp-2022'] as const) {
			const {args} = crosvmCommand(config, {cid: 3, dialect, target: {os: 'android', arch: 'aarch64'}, payloadChannel: true, controlSocket: '/run/vm.sock'});
			expect(Math.max(...args.map(argument => Buffer.byteLength(argument) + 1))).toBeLessThan(MAX_ARG_STRLEN);
			expect(args.reduce((total, argument) => total + Buffer.byteLength(argument) + 9, 0)).toBeLessThanOrEqual(MAX_ARGV_BYTES);
		}
	});

	test('one argument over the limit', () => {
		expectInvalid(() => {
			checkArgvSize(['run', 'x'.repeat(MAX_ARGUMENT_BYTES)]);
		}, 'argv', `argument 1 is ${MAX_ARGUMENT_BYTES + 1} bytes: at most ${MAX_ARGUMENT_BYTES} (Linux refuses one over 128 KiB)`);
	});

	test('a host\'s extra QEMU arguments that would overflow argv are refused by the builder, before any spawn', () => {
		const extraArgs = Array.from({length: 8}, () => 'y'.repeat(40 * 1024));
		expect(() => qemuCommand({kernel}, {cid: 3, qmpSocket: '/run/qmp.sock', eventLog: '/run/events.log', payloadChannel: false, extraArgs}))
			.toThrow(expect.objectContaining({field: 'argv', reason: expect.stringMatching(/^the command line is \d+ bytes: at most 262144$/) as string}) as InvalidConfigError);
	});
});
