import fc from 'fast-check';
import {InvalidConfigError} from '../../../src/errors.js';
import {crosvmCommand, type CrosvmDialect, type CrosvmTarget} from '../../../src/services/crosvm/command.js';
import type {VmConfig} from '../../../src/services/config/vm-config.js';
import {makeConfigFiles, validConfig} from '../../helpers/config-arbitraries.js';

const files = makeConfigFiles();

afterAll(files.remove);

const PROC_FD = /\/proc\/self\/fd\/(\d+)/g;

/** crosvm's first step: every argument longer than one character that starts with `-` and holds `=` is split at its first `=`. */
function crosvmSplit(args: string[]): string[] {
	return args.flatMap(arg => {
		const equals = arg.indexOf('=');
		return arg.length > 1 && arg.startsWith('-') && equals !== -1 ? [arg.slice(0, equals), arg.slice(equals + 1)] : [arg];
	});
}

/** The values that follow each occurrence of `flag`, once crosvm has split the argv. */
function valuesOf(args: string[], flag: string): string[] {
	const split = crosvmSplit(args);
	return split.flatMap((arg, index) => arg === flag ? [split[index + 1]!] : []);
}

const target = fc.constantFrom<CrosvmTarget>(
	{os: 'linux', arch: 'x86_64'},
	{os: 'linux', arch: 'aarch64'},
	{os: 'android', arch: 'x86_64'},
	{os: 'android', arch: 'aarch64'},
);

// Any params without NUL, including ones that start with "-" and hold "=".
const params = fc.option(fc.oneof(fc.string({maxLength: 20}), fc.string({maxLength: 10}).map(text => `-${text}=${text}`)).filter(text => !text.includes('\0')), {nil: undefined});

const input = fc.record({
	config: fc.tuple(validConfig(files), params).map(([config, params]): VmConfig => params === undefined ? config : {...config, params}),
	dialect: fc.constantFrom<CrosvmDialect>('current', 'aosp-2022'),
	target,
	cid: fc.integer({min: 3, max: 0xFF_FF_FF_FE}),
	payloadChannel: fc.boolean(),
	controlSocket: fc.option(fc.constantFrom('/run/vm/crosvm.sock', '-odd=name.sock'), {nil: undefined}),
});

describe('the command line and its descriptor plan agree (property-based)', () => {
	test('every /proc/self/fd/N names a plan entry; every entry but indirect files is named; each value survives crosvm\'s split', () => {
		fc.assert(fc.property(input, ({config, dialect, target, cid, payloadChannel, controlSocket}) => {
			const profiles = config.taskProfiles ?? [];
			if (dialect === 'current' && target.os === 'linux' && profiles.length > 0) {
				expect(() => crosvmCommand(config, {cid, dialect, target, payloadChannel, controlSocket})).toThrow(InvalidConfigError);
				return;
			}

			const {args, fds} = crosvmCommand(config, {cid, dialect, target, payloadChannel, controlSocket});
			const named = new Map<number, number>();
			for (const arg of args) {
				for (const [, number] of arg.matchAll(PROC_FD)) {
					named.set(Number(number), (named.get(Number(number)) ?? 0) + 1);
				}
			}

			expect(fds.map(entry => entry.childFd)).toEqual(fds.map((_entry, index) => index + 3));
			for (const [fd] of named) {
				expect(fds.some(entry => entry.childFd === fd)).toBe(true);
			}

			for (const entry of fds) {
				const times = entry.role === 'indirect' ? 0 : entry.role === 'console' ? 2 : 1;
				expect([entry.field, named.get(entry.childFd) ?? 0]).toEqual([entry.field, times]);
			}

			const kernel = fds.find(entry => entry.role === 'kernel');
			if (kernel !== undefined) {
				expect(args.at(-1)).toBe(`/proc/self/fd/${kernel.childFd}`);
			}

			expect(valuesOf(args, '--params')).toEqual(config.params === undefined ? [] : [config.params]);
			expect(valuesOf(args, '--socket')).toEqual(controlSocket === undefined ? [] : [controlSocket]);
			const expectedProfiles = dialect === 'aosp-2022' ? (profiles.length > 0 ? [profiles.join(',')] : []) : profiles;
			expect(valuesOf(args, '--task-profiles')).toEqual(expectedProfiles);
			const disks = fds.filter(entry => entry.role === 'disk');
			if (dialect === 'aosp-2022') {
				const diskArgs = args.flatMap((arg, index) => arg === '--disk' || arg === '--rwdisk' ? [[arg, args[index + 1]]] : []);
				expect(diskArgs).toEqual((config.disks ?? []).map((disk, index) => [disk.writable ? '--rwdisk' : '--disk', `/proc/self/fd/${disks[index]!.childFd}`]));
			} else {
				expect(valuesOf(args, '--block')).toEqual((config.disks ?? []).map((disk, index) => `path=/proc/self/fd/${disks[index]!.childFd},ro=${!disk.writable}`));
			}
		}), {numRuns: 500});
	});
});
