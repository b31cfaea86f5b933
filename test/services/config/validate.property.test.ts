import {readdirSync} from 'node:fs';
import {afterAll, describe, expect, test} from '@jest/globals';
import fc from 'fast-check';
import {InvalidConfigError} from '../../../src/errors.js';
import {listConfigFiles} from '../../../src/services/config/files.js';
import {crosvmCommand, planDescriptors} from '../../../src/services/crosvm/command.js';
import {openDescriptors} from '../../../src/services/vmm/descriptors.js';
import type {FilePolicy} from '../../../src/services/config/file-policy.js';
import {validateConfig} from '../../../src/services/config/validate.js';
import type {VmConfig} from '../../../src/services/config/vm-config.js';
import {openDescriptors as descriptorsOfThisProcess} from '../../helpers/leak-checker.js';
import {anyConfigInput, makeConfigFiles, validConfig} from '../../helpers/config-arbitraries.js';

const files = makeConfigFiles();

afterAll(() => {
	files.remove();
});

const configFields = new Set(['config', 'bootloader', 'kernel', 'initrd', 'disks', 'params', 'protected', 'memoryMib', 'cpus', 'cpuAffinity', 'taskProfiles', 'consoleOutput', 'logOutput', 'indirectFiles', 'platformVersion', 'detectHangup', 'stranger']);

describe('config validation (property-based)', () => {
	test('arbitrary input either validates or throws InvalidConfigError naming a field and a reason, never anything else, never hangs, and opens nothing for good', () => {
		const before = descriptorsOfThisProcess();
		// Relative paths are the host's working directory: only the restricted policy may create there.
		const policies: FilePolicy[] = [{}, {allowHostDescriptors: true}, {allowedDirectories: [files.dir], createOutputs: true, allowHostDescriptors: true}];
		const workingDirectory = readdirSync(process.cwd()).sort();
		let refused = 0;
		let accepted = 0;
		let slowest = 0;
		fc.assert(fc.property(anyConfigInput(files), fc.constantFrom(...policies), (input, policy) => {
			const started = performance.now();
			try {
				validateConfig(input as VmConfig, policy);
				// What validation accepts, the open takes or refuses (a file may be its to refuse) the same way.
				openDescriptors(planDescriptors(listConfigFiles(input as VmConfig), true), policy).close();
				accepted++;
			} catch (error) {
				expect(error).toBeInstanceOf(InvalidConfigError);
				const {field, reason} = error as InvalidConfigError;
				// The field is a path into the config: its first segment is a field, the config itself, or
				// the stranger key that was refused.
				const head = field.split(/[.[]/)[0]!;
				const ownKeys = typeof input === 'object' && input !== null ? Object.keys(input) : [];
				expect(configFields.has(head) || ownKeys.includes(field)).toBe(true);
				expect(reason.trim().length).toBeGreaterThan(0);
				refused++;
			} finally {
				slowest = Math.max(slowest, performance.now() - started);
			}
		}), {numRuns: 2000});
		// Not a speed goal: a bound on every input that no hang or walk of a huge input could meet.
		expect(slowest).toBeLessThan(2000);
		// Both outcomes happen: the generator is not trivially one-sided.
		expect(refused).toBeGreaterThan(100);
		expect(accepted).toBeGreaterThan(0);
		expect(descriptorsOfThisProcess()).toEqual(before);
		expect(readdirSync(process.cwd()).sort()).toEqual(workingDirectory);
	});

	test('every valid config validates, and the command builder accepts it for both dialects', () => {
		fc.assert(fc.property(validConfig(files), fc.integer({min: 3, max: 0xFF_FF_FF_FE}), (config, cid) => {
			expect(() => {
				validateConfig(config);
			}).not.toThrow();
			for (const dialect of ['current', 'aosp-2022'] as const) {
				const command = crosvmCommand(config, {cid, dialect, target: {os: 'android', arch: 'aarch64'}, payloadChannel: true, controlSocket: '/run/vm.sock'});
				expect(command.args.join(' ')).toMatch(new RegExp(`(?:^|[ =])${cid}(?:$|[ ,])`));
				// The descriptor plan is contiguous from 3.
				expect(command.fds.map(entry => entry.childFd)).toEqual(command.fds.map((_entry, index) => index + 3));
			}
		}), {numRuns: 300});
	});
});
