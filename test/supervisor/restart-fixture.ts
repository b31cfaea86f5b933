/**
 * What the restart and group tests on crosvm-sim share: a fresh work directory and tempRoot per
 * test, the supervisor under test shut down afterwards, and a leak check proving (through /proc and
 * the file system) that no process, descriptor or temporary directory is left.
 */
import {existsSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join, resolve} from 'node:path';
import {execa} from 'execa';
import winston from 'winston';
import {createSupervisor, type Supervisor, type SupervisorEvent, type SupervisorOptions} from '../../src/supervisor.js';
import {settleLeaks, takeSnapshot, type ResourceSnapshot} from '../helpers/leak-checker.js';

const SIM_PATH = process.env['VMWARDEN_TEST_VMM'] ?? resolve('dist/crosvm-sim/cli.js');

export function useRestartFixture() {
	let work = '';
	let tempRoot = '';
	let baseline: ResourceSnapshot | undefined;
	let supervisor: Supervisor | undefined;

	beforeAll(async () => {
		if (!existsSync(SIM_PATH)) {
			throw new Error(`${SIM_PATH} is missing: run npm run build first`);
		}

		// The first spawn creates libuv's signal pipe for good: keep it out of every baseline.
		await execa(process.execPath, ['-e', '0']);
	});

	beforeEach(() => {
		work = mkdtempSync(join(tmpdir(), 'vmwarden-restart-test-'));
		tempRoot = mkdtempSync(join(tmpdir(), 'vmwarden-restart-root-'));
		baseline = takeSnapshot([tempRoot]);
	});

	afterEach(async () => {
		await supervisor?.shutdown({stopTimeoutMs: 500});
		supervisor = undefined;
		const leaks = baseline === undefined ? [] : await settleLeaks(baseline, [tempRoot]);
		rmSync(work, {recursive: true, force: true});
		rmSync(tempRoot, {recursive: true, force: true});
		expect(leaks).toEqual([]);
	});

	/** Writes a guest script (the header is added) and returns its path. */
	const guest = (directives: string[]): string => {
		const file = join(work, `guest-${Math.random().toString(36).slice(2)}`);
		script(file, directives);
		return file;
	};

	/** A supervisor on the simulator, with every event it publishes collected. */
	const supervise = (options: SupervisorOptions = {}): {supervisor: Supervisor; events: SupervisorEvent[]} => {
		const created = createSupervisor({crosvmPath: SIM_PATH, tempRoot, logger: winston.createLogger({silent: true}), stopTimeoutMs: 2000, ...options});
		supervisor = created;
		const events: SupervisorEvent[] = [];
		created.events$.subscribe(event => events.push(event));
		return {supervisor: created, events};
	};

	return {guest, supervise};
}

/** Replaces a guest script: the simulator reads it at the next launch. */
export function script(file: string, directives: string[]): void {
	writeFileSync(file, ['#!crosvm-sim-guest', ...directives, ''].join('\n'));
}
