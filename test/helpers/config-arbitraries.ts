import {execFileSync} from 'node:child_process';
import {mkdtempSync, rmSync, symlinkSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import type {FileSource, VmConfig} from '../../src/services/config/vm-config.js';

/** Real files for the generators to name, in a directory of their own. */
export interface ConfigFiles {
	dir: string;
	/** A guest script that powers off at once (valid as kernel or bootloader for crosvm-sim). */
	kernel: string;
	/** Readable and writable regular files (disk images, initrd, indirect files). */
	images: string[];
	/** Existing empty regular files for console and log outputs (the default file policy creates none). */
	outputs: string[];
	/** Files no config should get: a FIFO, a link to an image, a character device. */
	traps: string[];
	remove: () => void;
}

export function makeConfigFiles(): ConfigFiles {
	const dir = mkdtempSync(path.join(tmpdir(), 'vmw-prop-config-'));
	const kernel = path.join(dir, 'kernel');
	writeFileSync(kernel, '#!crosvm-sim-guest\npoweroff\n');
	const images = ['a.img', 'b.img', 'c.img'].map(name => {
		const file = path.join(dir, name);
		writeFileSync(file, 'image');
		return file;
	});
	const outputs = ['console.txt', 'log.txt', 'other.txt'].map(name => {
		const file = path.join(dir, name);
		writeFileSync(file, '');
		return file;
	});
	const fifo = path.join(dir, 'trap.fifo');
	execFileSync('mkfifo', [fifo]);
	const link = path.join(dir, 'trap-link.img');
	symlinkSync(images[0]!, link);
	return {
		dir,
		kernel,
		images,
		outputs,
		traps: [fifo, link, '/dev/zero'],
		remove() {
			rmSync(dir, {recursive: true, force: true});
		},
	};
}

/** Paths that exist, do not exist, cannot be created, or are malformed. */
function anyPath(files: ConfigFiles): fc.Arbitrary<string> {
	return fc.oneof(
		fc.constantFrom(files.kernel, ...files.images, ...files.outputs, ...files.traps, files.dir, path.join(files.dir, 'missing'), path.join(files.dir, 'missing', 'deeper'), '', 'with\0nul'),
		fc.string({maxLength: 12}).map(name => path.join(files.dir, 'gen', name)),
	);
}

// Made once: strings and arrays far over every bound, which validation must refuse by their size.
const HUGE_STRING = 'x'.repeat(4 * 1024 * 1024);
const HUGE_UTF8 = '€'.repeat(40_000);
const HUGE_SPARSE_ARRAY: unknown[] = new Array(2 ** 32 - 1);

/** Keys that try to reach a prototype, or to look like VmConfig's own. */
const TRICKY_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'valueOf', 'hasOwnProperty', 'kernel', 'image', 'writable'];

/** Junk nested deeper, with prototype keys, null prototypes, boxed values, sparse arrays. */
function anyJunk(): fc.Arbitrary<unknown> {
	return fc.oneof(
		fc.anything({maxDepth: 3, key: fc.oneof(fc.string({maxLength: 6}), fc.constantFrom(...TRICKY_KEYS)), withNullPrototype: true, withBoxedValues: true, withSparseArray: true, withObjectString: true, withMap: true, withSet: true, withTypedArray: true}),
		fc.json({depthSize: 'small'}).map(text => JSON.parse(text) as unknown),
		fc.constantFrom(HUGE_STRING, HUGE_UTF8, `${HUGE_STRING}\0`, HUGE_SPARSE_ARRAY, [HUGE_STRING], {image: HUGE_STRING, writable: true}),
	);
}

/** A value of the wrong type, or a right one: anything a caller could pass in a field. */
function anyValue(files: ConfigFiles): fc.Arbitrary<unknown> {
	return fc.oneof(
		{weight: 3, arbitrary: fc.anything({maxDepth: 2})},
		{weight: 2, arbitrary: anyJunk()},
		{weight: 3, arbitrary: anyPath(files)},
		{weight: 2, arbitrary: fc.integer({min: -3, max: 4_294_967_300})},
		{weight: 1, arbitrary: fc.constantFrom(0, 1, 2, 1.5, Number.NaN, -1, 1024, true, false, null, undefined)},
		{weight: 1, arbitrary: fc.string({maxLength: 20})},
	);
}

/**
 * Arbitrary input for `validateConfig`: plain garbage, or objects with VmConfig's fields (and
 * strangers) holding right and wrong values.
 */
export function anyConfigInput(files: ConfigFiles): fc.Arbitrary<unknown> {
	const field = anyValue(files);
	const disk = fc.oneof(anyValue(files), fc.record({image: field, writable: fc.oneof(fc.boolean(), field)}, {requiredKeys: []}));
	const configLike = fc.record({
		bootloader: field,
		kernel: fc.oneof(anyPath(files), field),
		initrd: field,
		disks: fc.oneof(fc.array(disk, {maxLength: 3}), field),
		params: fc.oneof(fc.string({maxLength: 30}), field),
		protected: fc.oneof(fc.boolean(), field),
		memoryMib: fc.oneof(fc.integer({min: -5, max: 1 << 20}), field),
		cpus: fc.oneof(fc.integer({min: -1, max: 64}), field),
		cpuAffinity: fc.oneof(fc.constantFrom('0', '0,1-3', '0=0:1=1-2', '3-1', '', '0=', 'x'), fc.string({maxLength: 10}), field),
		taskProfiles: fc.oneof(fc.array(fc.string({maxLength: 8}), {maxLength: 3}), field),
		consoleOutput: fc.oneof(anyPath(files), field),
		logOutput: fc.oneof(anyPath(files), field),
		indirectFiles: fc.oneof(fc.array(anyPath(files), {maxLength: 2}), field),
		platformVersion: fc.oneof(fc.constantFrom('*', '~1.0', '^1', '>=2', '1.x', 'not a range'), field),
		detectHangup: fc.oneof(fc.boolean(), field),
		stranger: field,
	}, {requiredKeys: []});
	const fieldNames = ['bootloader', 'kernel', 'initrd', 'disks', 'params', 'protected', 'memoryMib', 'cpus', 'cpuAffinity', 'taskProfiles', 'consoleOutput', 'logOutput', 'indirectFiles', 'platformVersion', 'detectHangup', 'stranger'];
	// A valid config with one field replaced: the refusals that matter most are near misses.
	const nearMiss = fc.tuple(validConfig(files), fc.constantFrom(...fieldNames), field)
		.map(([config, name, value]) => ({...config, [name]: value}));
	// A config as parsed from a client's JSON: a "__proto__" key is then an own key.
	const parsed = fc.tuple(validConfig(files), fc.constantFrom(...TRICKY_KEYS), fc.jsonValue({depthSize: 'small'}))
		.map(([config, key, value]) => JSON.parse(JSON.stringify({...config, [key]: value})) as unknown);
	const protoKey = validConfig(files).map(config => JSON.parse(`{"__proto__": {"kernel": "/etc/shadow"}, ${JSON.stringify(config).slice(1)}`) as unknown);
	return fc.oneof(
		{weight: 1, arbitrary: fc.anything({maxDepth: 2})},
		{weight: 1, arbitrary: anyJunk()},
		{weight: 1, arbitrary: fc.oneof(parsed, protoKey)},
		{weight: 3, arbitrary: configLike},
		{weight: 3, arbitrary: nearMiss},
		{weight: 2, arbitrary: validConfig(files)},
	);
}

/** Configs that are valid by construction (every file exists and every value is in range). */
export function validConfig(files: ConfigFiles): fc.Arbitrary<VmConfig> {
	const image = fc.constantFrom<FileSource>(...files.images);
	const output = fc.constantFrom(...files.outputs);
	return fc.record({
		useBootloader: fc.boolean(),
		initrd: fc.option(image, {nil: undefined}),
		disks: fc.array(fc.record({image, writable: fc.boolean()}), {maxLength: 3}),
		params: fc.option(fc.constantFrom('console=hvc0', 'quiet', '-x=1 a=b', 'init=/init ro'), {nil: undefined}),
		protected: fc.option(fc.boolean(), {nil: undefined}),
		memoryMib: fc.option(fc.integer({min: 1, max: 16_384}), {nil: undefined}),
		cpus: fc.option(fc.integer({min: 1, max: 8}), {nil: undefined}),
		cpuAffinity: fc.option(fc.constantFrom('0', '0,1', '0-1', '0=0:1=1'), {nil: undefined}),
		taskProfiles: fc.option(fc.array(fc.constantFrom('SCHED_SP_TOP_APP', 'VMCompilationPerformance'), {minLength: 1, maxLength: 2}), {nil: undefined}),
		consoleOutput: fc.option(output, {nil: undefined}),
		logOutput: fc.option(output, {nil: undefined}),
		indirectFiles: fc.option(fc.array(image, {maxLength: 2}), {nil: undefined}),
		platformVersion: fc.option(fc.constantFrom('*', '~1.0', '^1.0.0'), {nil: undefined}),
	}).map(({useBootloader, initrd, ...rest}): VmConfig => {
		const config: VmConfig = useBootloader ? {bootloader: files.kernel} : {kernel: files.kernel, ...(initrd === undefined ? {} : {initrd})};
		for (const [key, value] of Object.entries(rest)) {
			if (value !== undefined) {
				(config as Record<string, unknown>)[key] = value;
			}
		}

		return config;
	});
}
