import {mkdtempSync, rmSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {afterAll, beforeAll, describe, expect, test} from '@jest/globals';
import fc from 'fast-check';
import {DeathReason} from '../../src/services/death/reason.js';
import {PAYLOAD_STATES, payloadStateRank, type PayloadState} from '../../src/services/payload/state.js';
import type {VmmDriver} from '../../src/services/vmm/driver.js';
import {createVm} from '../../src/vm.js';
import {settleLeaks, takeSnapshot} from '../helpers/leak-checker.js';
import {silentLogger} from '../helpers/vm-fixture.js';
import {InvalidPayloadTransitionError} from '../../src/errors.js';
import {type VmEvent} from '../../src/types.js';

/**
 * A VMM that only sleeps: payload ordering is the VM machine's business, not crosvm's, so this
 * property runs the real vmMachine with a process that is cheap to start and kill.
 */
const sleepDriver: VmmDriver = {
	name: 'sleep',
	defaultPath: 'sleep',
	command: () => ({args: ['600'], fds: []}),
	async requestStop() {
		throw new Error('sleep cannot be asked to stop');
	},
	exitReason: exit => (exit.signal === undefined ? DeathReason.SHUTDOWN : DeathReason.KILLED),
};

let dir: string;
let kernel: string;

beforeAll(() => {
	dir = mkdtempSync(path.join(tmpdir(), 'vmw-prop-payload-'));
	kernel = path.join(dir, 'kernel');
	writeFileSync(kernel, 'not used by sleep');
});

afterAll(() => {
	rmSync(dir, {recursive: true, force: true});
});

type Report = {route: 'caller' | 'guest'; state: PayloadState};
const reports = fc.array(fc.record({route: fc.constantFrom<Report['route']>('caller', 'guest'), state: fc.constantFrom(...PAYLOAD_STATES)}), {maxLength: 12});

describe('payload ordering on the real VM machine (property-based)', () => {
	test('any sequence of reports leaves a monotone payload state and refuses exactly the backward and repeated ones', async () => {
		const tempRoot = mkdtempSync(path.join(dir, 'root-'));
		const baseline = takeSnapshot([tempRoot]);
		let cid = 10_000;
		await fc.assert(fc.asyncProperty(reports, async sequence => {
			const vm = createVm({kernel}, {cid: cid++, driver: sleepDriver, crosvmPath: 'sleep', payloadChannel: false, tempRoot, logger: silentLogger()});
			const events: VmEvent[] = [];
			vm.events$.subscribe(event => {
				events.push(event);
			});
			const seen: PayloadState[] = [];
			vm.snapshots$.subscribe(snapshot => {
				seen.push(snapshot.context.payloadState);
			});
			await vm.start();
			try {
				let current: PayloadState = 'Starting';
				const accepted: Array<[PayloadState, PayloadState, string]> = [];
				const refusedByGuest: Array<[PayloadState, PayloadState]> = [];
				for (const {route, state} of sequence) {
					const forward = payloadStateRank(state) > payloadStateRank(current);
					if (route === 'caller') {
						if (forward) {
							vm.updatePayloadState(state);
						} else {
							expect(() => {
								vm.updatePayloadState(state);
							}).toThrow(new InvalidPayloadTransitionError(current, state));
						}
					} else {
						// What the payload channel sends for a guest report.
						vm.actor.send({type: 'PAYLOAD.REPORT', state, initiator: 'guest'});
						if (!forward) {
							refusedByGuest.push([current, state]);
						}
					}

					if (forward) {
						accepted.push([current, state, route]);
						current = state;
					}

					expect(vm.payloadState).toBe(current);
				}

				expect(events.filter(event => event.type === 'payload').map(event => event.type === 'payload' && [event.from, event.to, event.initiator])).toEqual(accepted);
				expect(events.filter(event => event.type === 'payload-refused').map(event => event.type === 'payload-refused' && [event.from, event.to])).toEqual(refusedByGuest);
				for (const event of events.filter(event => event.type === 'payload-refused')) {
					expect(event.type === 'payload-refused' && event.message).toBe(`Invalid payload state transition from ${event.type === 'payload-refused' && event.from} to ${event.type === 'payload-refused' && event.to}`);
				}

				// Monotone through every snapshot the VM went through.
				expect(seen.map(payloadStateRank)).toEqual([...seen.map(payloadStateRank)].sort((a, b) => a - b));
				vm.kill();
				expect(await vm.died).toMatchObject({reason: DeathReason.KILLED, payloadState: current});
			} finally {
				vm.kill();
			}
		}), {numRuns: 40});
		expect(await settleLeaks(baseline, [tempRoot])).toEqual([]);
	}, 60_000);
});
