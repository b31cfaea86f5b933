import {execFileSync} from 'node:child_process';
import {pathToFileURL} from 'node:url';
import {mkdtempSync, readdirSync, rmSync, writeFileSync} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {monitorEventLoopDelay} from 'node:perf_hooks';
import {setFlagsFromString} from 'node:v8';
import {runInNewContext} from 'node:vm';
import {setImmediate as nextTurn} from 'node:timers/promises';
import winston from 'winston';
import {afterAll, beforeAll, describe, expect, test} from '@jest/globals';
import {createSupervisor} from '../../../src/supervisor.js';
import type {Vm} from '../../../src/vm.js';
import {settleLeaks, takeSnapshot, type ResourceSnapshot} from '../../helpers/leak-checker.js';

const FLEET = 200;
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
/** Creating and stopping a supervised VM is the caller's work: a responsive caller does this many per turn. */
const PER_TURN = 10;

/** Builds the light stand-in (installing gcc with apt-get when it is missing) and returns its path. */
function buildStandIn(): string {
	const output = execFileSync('bash', [path.resolve('bench/stand-in/build.sh')], {encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit']});
	return output.trim().split('\n').at(-1)!;
}

describe('a fleet on the light stand-in', () => {
	let standIn: string;
	let work: string;
	let baseline: ResourceSnapshot;

	beforeAll(() => {
		standIn = buildStandIn();
		work = mkdtempSync(path.join(os.tmpdir(), 'vmw-fleet-'));
		writeFileSync(path.join(work, 'kernel'), 'not booted by the stand-in\n');
		baseline = takeSnapshot();
	});

	afterAll(() => {
		rmSync(work, {recursive: true, force: true});
	});

	test(`${FLEET} VMs start and stop without blocking the event loop, hold under 2 descriptors each, and leave nothing`, async () => {
		const tempRoot = mkdtempSync(path.join(work, 'root-'));
		const supervisor = createSupervisor({crosvmPath: standIn, tempRoot, logger: winston.createLogger({silent: true}), stopTimeoutMs: 60_000});
		const delay = monitorEventLoopDelay({resolution: 5});
		delay.enable();
		const vms: Vm[] = [];
		for (let index = 0; index < FLEET; index++) {
			vms.push(await supervisor.createVm({kernel: path.join(work, 'kernel')}));
			if (index % PER_TURN === PER_TURN - 1) {
				await nextTurn();
			}
		}

		// Every start in one tick: vmwarden spreads the spawn work, never the caller.
		await Promise.all(vms.map(async vm => vm.start()));
		expect(vms.every(vm => vm.state === 'Running')).toBe(true);
		const held = readdirSync('/proc/self/fd').length - baseline.descriptors.size;
		// A stop's own transition in the VM machine is the caller's work too (about a millisecond).
		const stopping: Array<Promise<unknown>> = [];
		for (const [index, vm] of vms.entries()) {
			stopping.push(vm.stop());
			if (index % PER_TURN === PER_TURN - 1) {
				await nextTurn();
			}
		}

		await Promise.all(stopping);
		const deaths = await Promise.all(vms.map(async vm => vm.died));
		await supervisor.shutdown();
		delay.disable();

		expect(vms.map(vm => vm.state)).toEqual(vms.map(() => 'Dead'));
		expect(deaths.map(death => death.reason)).toEqual(vms.map(() => 'SHUTDOWN'));
		// Generous: the point is that no spawn, stop or death ever waits on a fork in the event loop.
		expect(delay.max / 1e6).toBeLessThan(500);
		expect(held).toBeLessThan(2 * FLEET);
		expect(readdirSync(tempRoot)).toEqual([]);
		// The spawner thread ends once idle, and with it its descriptors.
		expect(await settleLeaks(baseline, [], 5000)).toEqual([]);
	}, 120_000);

	test('what a start() holds until its turn is small: a caller starting thousands in one tick is not blocked by collecting them', async () => {
		// At 10,000 VMs, 1.6-2 KiB a call made the caller's loop a 26 ms block, mostly young-generation
		// collections of the waiting promises. A VMM that is not there fails each start at its turn,
		// so thousands of VMs cost no process.
		const COUNT = 5000;
		const tempRoot = mkdtempSync(path.join(work, 'root-'));
		const supervisor = createSupervisor({crosvmPath: path.join(work, 'no-such-vmm'), tempRoot, logger: winston.createLogger({silent: true})});
		const vms: Vm[] = [];
		for (let index = 0; index < COUNT; index++) {
			vms.push(await supervisor.createVm({kernel: path.join(work, 'kernel')}));
		}

		// Collected before and after, so that only what the waiting starts hold is counted.
		gc();
		const heapBefore = process.memoryUsage().heapUsed;
		const starting = vms.map(async vm => vm.start());
		gc();
		const heldPerStart = (process.memoryUsage().heapUsed - heapBefore) / COUNT;
		const outcomes = await Promise.allSettled(starting);
		await supervisor.shutdown();
		expect(outcomes.filter(outcome => outcome.status === 'rejected' && (outcome.reason as {code?: string}).code === 'VMM_NOT_FOUND')).toHaveLength(COUNT);
		// The caller's own async arrow and Promise.all element included.
		expect(heldPerStart).toBeLessThan(1200);
		expect(readdirSync(tempRoot)).toEqual([]);
	}, 120_000);

	test('with only 64 descriptors, 40 starts at once never crash the host: each runs or fails with a typed error, and shutdown stops the ones that run', () => {
		const tempRoot = mkdtempSync(path.join(work, 'root-'));
		// Outside the package: every import is by URL, and .mts makes it a module.
		const host = path.join(work, 'emfile-host.mts');
		writeFileSync(host, `
import {execFileSync} from 'node:child_process';
import winston from ${JSON.stringify(pathToFileURL(path.resolve('node_modules/winston/lib/winston.js')).href)};
import {createSupervisor} from ${JSON.stringify(pathToFileURL(path.resolve('src/supervisor.ts')).href)};
const [vmm, tempRoot, kernel] = process.argv.slice(2);
// The limit comes once the modules are in: tsx's loader reads many files at once, and under 64
// descriptors it could fail before vmwarden runs. The spawner, started later, inherits it.
execFileSync('prlimit', ['--pid', String(process.pid), '--nofile=64:64']);
const supervisor = createSupervisor({crosvmPath: vmm, tempRoot, logger: winston.createLogger({silent: true})});
// One VM first, so that every module (loaded lazily) is in before the descriptors run out.
const first = await supervisor.createVm({kernel});
await first.start();
first.kill();
await first.died;
const vms = await Promise.all(Array.from({length: 40}, async () => supervisor.createVm({kernel})));
const results = await Promise.allSettled(vms.map(async vm => vm.start()));
// The VMs that run are still supervised: shutdown() stops them (its stop commands spawn too).
const running = vms.filter((vm, index) => results[index].status === 'fulfilled');
await supervisor.shutdown();
const deaths = await Promise.all(running.map(async vm => vm.died));
console.log(JSON.stringify({outcomes: results.map(result => result.status === 'fulfilled' ? 'running' : result.reason.name), deaths: deaths.map(death => death.reason)}));
`);
		const output = execFileSync(process.execPath, ['--import', 'tsx', host, standIn, tempRoot, path.join(work, 'kernel')], {encoding: 'utf8'});
		const {outcomes, deaths} = JSON.parse(output) as {outcomes: string[]; deaths: string[]};
		expect(outcomes).toHaveLength(40);
		expect(deaths).toHaveLength(outcomes.filter(outcome => outcome === 'running').length);
		expect(deaths.length).toBeGreaterThan(0);
		expect(deaths.filter(reason => !['SHUTDOWN', 'KILLED'].includes(reason))).toEqual([]);
		expect(outcomes.filter(outcome => !['running', 'VmSpawnError', 'InvalidConfigError'].includes(outcome))).toEqual([]);
		expect(outcomes).toContain('VmSpawnError');
		expect(readdirSync(tempRoot)).toEqual([]);
	}, 60_000);
});
