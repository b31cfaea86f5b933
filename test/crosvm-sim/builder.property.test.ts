import {mkdtempSync, rmSync} from 'node:fs';
import path from 'node:path';
import {afterAll, describe, expect, test} from '@jest/globals';
import fc from 'fast-check';
import {InvalidConfigError} from '../../src/errors.js';
import {crosvmCommand, hostTarget, type CrosvmDialect, type CrosvmTarget} from '../../src/services/crosvm/command.js';
import {createCrosvmDriver} from '../../src/services/crosvm/driver.js';
import {DeathReason} from '../../src/services/death/reason.js';
import type {VmConfig} from '../../src/services/config/vm-config.js';
import {createVm} from '../../src/vm.js';
import {settleLeaks, takeSnapshot} from '../helpers/leak-checker.js';
import {SIM_PATH, silentLogger} from '../helpers/vm-fixture.js';
import {makeConfigFiles, validConfig} from '../helpers/config-arbitraries.js';

const files = makeConfigFiles();

afterAll(() => {
	files.remove();
});

/** Each dialect against the simulator build that speaks it. */
const builds: Array<{dialect: CrosvmDialect; target: CrosvmTarget; env: Record<string, string>}> = [
	{dialect: 'current', target: hostTarget(), env: {CROSVM_SIM_BUILD: 'current'}},
	{dialect: 'aosp-2022', target: {os: 'android', arch: 'aarch64'}, env: {CROSVM_SIM_BUILD: 'aosp-2022'}},
];

/** Whether the builder takes the config for that target (some options exist on Android only). */
function buildable(config: VmConfig, dialect: CrosvmDialect, target: CrosvmTarget): boolean {
	try {
		crosvmCommand(config, {cid: 3, dialect, target, payloadChannel: true, controlSocket: '/run/vm.sock'});
		return true;
	} catch (error) {
		if (error instanceof InvalidConfigError) {
			return false;
		}

		throw error;
	}
}

describe('the command builder and crosvm-sim (property-based)', () => {
	test.each(builds)('every valid config the builder takes runs on crosvm-sim ($dialect): its argv and descriptors are accepted', async ({dialect, target, env}) => {
		const tempRoot = mkdtempSync(path.join(files.dir, `root-${dialect}-`));
		const baseline = takeSnapshot([tempRoot]);
		// Set and restored key by key: process.env must stay the process's own environment object,
		// which the spawner thread shares, not be replaced by a copy.
		const saved = Object.fromEntries(Object.keys(env).map(key => [key, process.env[key]]));
		Object.assign(process.env, env);
		let cid = 20_000;
		let ran = 0;
		try {
			await fc.assert(fc.asyncProperty(validConfig(files), async config => {
				fc.pre(buildable(config, dialect, target));
				ran++;
				const vm = createVm(config, {cid: cid++, crosvmPath: SIM_PATH, driver: createCrosvmDriver({dialect, target}), tempRoot, logger: silentLogger()});
				await vm.start();
				const death = await vm.died;
				// The guest powers off at once: a refused argument would be exit 1 (ERROR) with the reason in stderr.
				expect({reason: death.reason, exitCode: death.exitCode, stderr: death.reason === DeathReason.SHUTDOWN ? '' : death.stderrTail}).toEqual({reason: DeathReason.SHUTDOWN, exitCode: 0, stderr: ''});
			}), {numRuns: 15});
		} finally {
			for (const [key, value] of Object.entries(saved)) {
				if (value === undefined) {
					delete process.env[key];
				} else {
					process.env[key] = value;
				}
			}
		}

		expect(ran).toBeGreaterThan(5);
		expect(await settleLeaks(baseline, [tempRoot])).toEqual([]);
		rmSync(tempRoot, {recursive: true, force: true});
	}, 60_000);
});
