import {mkdtempSync, rmSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll, describe, expect, test} from '@jest/globals';
import winston from 'winston';
import {createMetrics} from '../../../src/services/metrics/metrics.js';
import {createSupervisor} from '../../../src/supervisor.js';
import {createVm, vmOperations} from '../../../src/vm.js';
import {SIM_PATH} from '../../helpers/vm-fixture.js';

const logger = winston.createLogger({silent: true});
const folder = mkdtempSync(join(tmpdir(), 'vmwarden-metrics-test-'));
afterAll(() => {
	rmSync(folder, {recursive: true, force: true});
});

function guest(name: string, ...lines: string[]): string {
	const file = join(folder, name);
	writeFileSync(file, ['#!crosvm-sim-guest', ...lines, ''].join('\n'));
	return file;
}

/** One sample of the text exposition: `name{labels} value`. */
function sample(text: string, line: string): number | undefined {
	const found = text.split('\n').find(candidate => candidate.startsWith(`${line} `));
	return found === undefined ? undefined : Number(found.slice(line.length + 1));
}

describe('Prometheus metrics', () => {
	test('after a scripted fleet, the counts and histogram totals are what happened', async () => {
		const cidRange = {first: 100, last: 109};
		const supervisor = createSupervisor({logger, crosvmPath: SIM_PATH, dialect: 'current', cidRange, tempRoot: folder});
		const metrics = createMetrics();
		const detach = metrics.observeSupervisor(supervisor, {cidRange});
		const start = async (kernel: string) => {
			const vm = await supervisor.createVm({kernel});
			await vm.start();
			return vm;
		};

		// Two crash, one powers off after its payload is ready, one fails to start, two are stopped
		// (one of them suspended first), one keeps running, suspended.
		const crashing = await Promise.all([start(guest('crash', 'crash')), start(guest('crash2', 'console bye', 'crash'))]);
		const ready = await start(guest('ready', 'payload started', 'payload ready', 'poweroff'));
		// Valid when created, gone when started: the launch fails.
		const vanishing = guest('vanishing', 'poweroff');
		const failing = await supervisor.createVm({kernel: vanishing});
		rmSync(vanishing);
		await expect(failing.start()).rejects.toThrow('does not exist');
		const stopped = await Promise.all([start(guest('hang', 'payload started', 'hang')), start(guest('hang2', 'hang'))]);
		const kept = await start(guest('hang3', 'hang'));
		await vmOperations(stopped[1]).suspend();
		await vmOperations(kept).suspend();
		await Promise.all([...crashing, ready].map(async vm => vm.died));
		await Promise.all(stopped.map(async vm => vm.stop()));

		const text = await metrics.registry.metrics();
		const expected = {
			'vmwarden_vm_starts_total': 6,
			'vmwarden_vm_start_failures_total': 1,
			'vmwarden_vm_deaths_total{reason="CRASH"}': 2,
			'vmwarden_vm_deaths_total{reason="SHUTDOWN"}': 3,
			'vmwarden_vm_start_seconds_count{phase="running"}': 6,
			'vmwarden_vm_start_seconds_bucket{le="+Inf",phase="running"}': 6,
			'vmwarden_vm_start_seconds_count{phase="payload_started"}': 2,
			'vmwarden_vm_start_seconds_count{phase="payload_ready"}': 1,
			'vmwarden_vm_stop_seconds_count': 2,
			'vmwarden_vms{state="Running"}': 1,
			'vmwarden_vms_suspended': 1,
		};
		expect(Object.fromEntries(Object.keys(expected).map(line => [line, sample(text, line)]))).toEqual(expected);
		expect(sample(text, 'vmwarden_vm_stop_seconds_sum')).toBeGreaterThan(0);
		// 10 CIDs; the running VM holds one, dead ones until their CID is released.
		expect(sample(text, 'vmwarden_cids_free')).toBe(10 - supervisor.vms().length);
		expect(supervisor.vms()).toContain(kept);
		await supervisor.shutdown();
		expect(sample(await metrics.registry.metrics(), 'vmwarden_cids_free')).toBe(10);
		expect(sample(await metrics.registry.metrics(), 'vmwarden_vm_deaths_total{reason="SHUTDOWN"}')).toBe(4);
		detach();
	}, 60_000);

	test('a standalone VM observed before start() gets its start latency and its death', async () => {
		const metrics = createMetrics({prefix: 'host_'});
		const vm = createVm({kernel: guest('standalone', 'payload started', 'poweroff')}, {cid: 200, crosvmPath: SIM_PATH, dialect: 'current', logger, tempRoot: folder});
		const detach = metrics.observeVm(vm);
		await vm.start();
		await vm.died;
		const text = await metrics.registry.metrics();
		expect(sample(text, 'host_vm_start_seconds_count{phase="running"}')).toBe(1);
		expect(sample(text, 'host_vm_start_seconds_count{phase="payload_started"}')).toBe(1);
		expect(sample(text, 'host_vm_deaths_total{reason="SHUTDOWN"}')).toBe(1);
		expect(sample(text, 'host_vms{state="Dead"}')).toBe(1);
		detach();
		expect(sample(await metrics.registry.metrics(), 'host_vms{state="Dead"}')).toBe(0);
	});
});
