import {existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {describe, expect, test} from '@jest/globals';
import {execa} from 'execa';
import {PAYLOAD_STATES} from '../../src/services/payload/state.js';
import {createSupervisor, type SupervisorEvent} from '../../src/supervisor.js';
import type {Vm} from '../../src/vm.js';
import {settleLeaks, takeSnapshot} from '../helpers/leak-checker.js';
import {SIM_PATH, silentLogger} from '../helpers/vm-fixture.js';
import {NoAvailableCidError} from '../../src/errors.js';
import type {VmDeath} from '../../src/types.js';

/** The soak's size and time budget: a few hundred VMs within about half a minute on two cores. */
const TOTAL_VMS = 300;
const MAX_LIVE = 16;
const CREATE_BUDGET_MS = 30_000;
/** As many CIDs as live VMs: each CID is handed out again many times, as soon as its VM is cleaned up. */
const CID_RANGE = {first: 7000, last: 7015};
const SEED = Number(process.env['VMWARDEN_SOAK_SEED'] ?? 20_261_126);

/** A small seeded generator (mulberry32), so a failing soak can be replayed with its seed. */
function random(seed: number): () => number {
	let state = seed >>> 0;
	return () => {
		state = (state + 0x6D_2B_79_F5) >>> 0;
		let t = state;
		t = Math.imul(t ^ (t >>> 15), t | 1);
		t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
		return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
	};
}

const FINAL_ACTIONS = [
	['poweroff'], ['reboot'], ['crash'], ['panic'], ['watchdog'], ['exit 1'], ['exit 7'], ['signal SIGSEGV'], ['abort'],
	['hang'], ['ignore-stop', 'hang'], ['ignore-sigterm', 'hang'],
] as const;

interface Plan {
	directives: string[];
	detectHangup: boolean;
	operation: 'none' | 'stop' | 'kill' | 'report';
	delayMs: number;
}

function planVm(next: () => number): Plan {
	const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!;
	const directives: string[] = [];
	for (const state of ['started', 'ready', 'finished 0']) {
		if (next() < 0.5) {
			directives.push(`payload ${state}`);
		}
	}

	if (next() < 0.2) {
		// Out of order: the VM must refuse it and carry on.
		directives.push(`payload ${pick(['started', 'ready'])}`);
	}

	if (next() < 0.3) {
		directives.push(`sleep ${Math.floor(next() * 300)}`);
	}

	if (next() < 0.15) {
		directives.push(`fail ${pick(['MICRODROID_PAYLOAD_HAS_CHANGED', 'something else'])}|soak`);
	}

	const final = pick(FINAL_ACTIONS);
	// A guest that ignores stops needs the stop before its final action.
	directives.unshift(...final.filter(directive => directive.startsWith('ignore-')));
	directives.push(...final.filter(directive => !directive.startsWith('ignore-')));
	return {
		directives,
		detectHangup: next() < 0.3,
		operation: pick(['none', 'stop', 'kill', 'report'] as const),
		delayMs: Math.floor(next() * 400),
	};
}

describe(`soak: up to ${TOTAL_VMS} VMs on crosvm-sim within ${CREATE_BUDGET_MS / 1000} s, at most ${MAX_LIVE} at once, over ${CID_RANGE.last - CID_RANGE.first + 1} CIDs (seed ${SEED})`, () => {
	test('every VM reports exactly one death, and nothing is left: no process, descriptor, CID or temporary directory', async () => {
		expect(existsSync(SIM_PATH)).toBe(true);
		await execa(process.execPath, ['-e', '0'], {cleanup: false});
		const next = random(SEED);
		const scripts = mkdtempSync(path.join(os.tmpdir(), 'vmw-soak-scripts-'));
		const tempRoot = mkdtempSync(path.join(os.tmpdir(), 'vmw-soak-root-'));
		const baseline = takeSnapshot([tempRoot]);
		const supervisor = createSupervisor({
			crosvmPath: SIM_PATH,
			cidRange: CID_RANGE,
			tempRoot,
			logger: silentLogger(),
			bootHangupTimeoutMs: 1000,
			stopTimeoutMs: 500,
		});
		const events: SupervisorEvent[] = [];
		supervisor.events$.subscribe(event => {
			events.push(event);
		});

		const deathsByVm = new Map<Vm, VmDeath[]>();
		const finished: Array<Promise<void>> = [];
		const live = new Set<Vm>();
		const started = Date.now();
		let created = 0;
		let refusedForCid = 0;
		try {
			while (created < TOTAL_VMS && Date.now() - started < CREATE_BUDGET_MS) {
				if (live.size >= MAX_LIVE) {
					await Promise.race([...live].map(async vm => vm.died));
					// Let the death's own continuations (which empty `live`) run before looking again.
					await new Promise(resolve => {
						setImmediate(resolve);
					});
					continue;
				}

				const plan = planVm(next);
				const kernel = path.join(scripts, `guest-${created}`);
				writeFileSync(kernel, ['#!crosvm-sim-guest', ...plan.directives, ''].join('\n'));
				let vm: Vm;
				try {
					vm = await supervisor.createVm({kernel, detectHangup: plan.detectHangup});
				} catch (error) {
					// Every CID is held by a VM that is dying: wait for one to be released.
					expect(error).toBeInstanceOf(NoAvailableCidError);
					refusedForCid++;
					await new Promise(resolve => {
						setTimeout(resolve, 20);
					});
					continue;
				}

				created++;
				const deaths: VmDeath[] = [];
				deathsByVm.set(vm, deaths);
				vm.onDied(death => {
					deaths.push(death);
					live.delete(vm);
				});
				live.add(vm);
				finished.push((async () => {
					await vm.start();
					await new Promise(resolve => {
						setTimeout(resolve, plan.delayMs);
					});
					switch (plan.operation) {
						case 'stop':
							await vm.stop({timeoutMs: 300});
							break;
						case 'kill':
							vm.kill();
							break;
						case 'report':
							try {
								vm.updatePayloadState(PAYLOAD_STATES[1 + Math.floor(next() * 3)]!);
							} catch {
								// Dead already, or not a forward move: both are refusals the VM must survive.
							}

							vm.kill();
							break;
						default:
							// Left to its guest; a hanging guest is killed below once the budget is spent.
							setTimeout(() => {
								vm.kill();
							}, 2000).unref();
					}

					await vm.died;
				})());
			}

			await Promise.all(finished);
		} finally {
			await supervisor.shutdown({stopTimeoutMs: 300});
		}

		// Exactly one death per VM, delivered to the callback, the promise and the event stream alike.
		expect(created).toBeGreaterThanOrEqual(100);
		for (const [vm, deaths] of deathsByVm) {
			expect(deaths).toHaveLength(1);
			expect(await vm.died).toBe(deaths[0]);
		}

		const died = events.filter(event => event.type === 'died');
		expect(died).toHaveLength(created);
		// Every CID handed out was given back, after its VM was dead and cleaned up.
		const allocated = events.filter(event => event.type === 'supervisor.cid.allocated').length;
		const released = events.filter(event => event.type === 'supervisor.cid.released').length;
		expect(allocated).toBe(created);
		expect(released).toBe(created);
		expect(supervisor.vms()).toEqual([]);
		expect(await settleLeaks(baseline, [tempRoot], 5000)).toEqual([]);
		expect(readdirSync(tempRoot)).toEqual([]);
		rmSync(scripts, {recursive: true, force: true});
		rmSync(tempRoot, {recursive: true, force: true});
		// Reported in the test output: how the run went.
		console.log(`soak: ${created} VMs in ${Date.now() - started} ms, ${refusedForCid} creates waited for a CID`);
	}, 120_000);
});
