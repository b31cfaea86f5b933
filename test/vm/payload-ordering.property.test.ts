import {describe, expect, test} from '@jest/globals';
import fc from 'fast-check';
import {DeathReason} from '../../src/services/death/reason.js';
import {PAYLOAD_STATES, payloadStateRank, type PayloadState} from '../../src/services/payload/state.js';
import {createVmHandle} from '../../src/vm.js';
import {InvalidPayloadTransitionError} from '../../src/errors.js';
import type {VmEvent} from '../../src/types.js';
import {PAYLOAD_REFUSALS_PER_WINDOW} from '../../src/machines/vm.machine.js';
import {fakeVm} from '../machines/vm-fakes.js';

/*
 * Payload ordering is the VM machine's business, not the VMM's: this property runs the real chart and
 * handle with a fake launch and an in-memory VMM, so hundreds of sequences take milliseconds.
 */

type Report = {route: 'caller' | 'guest'; state: PayloadState};
const reports = fc.array(fc.record({route: fc.constantFrom<Report['route']>('caller', 'guest'), state: fc.constantFrom(...PAYLOAD_STATES)}), {maxLength: 16});

describe('payload ordering on the real VM machine (property-based)', () => {
	test('any sequence of reports leaves a monotone payload state and refuses exactly the backward and repeated ones (reporting the first of each window)', async () => {
		await fc.assert(fc.asyncProperty(reports, async sequence => {
			const fake = fakeVm();
			const vm = createVmHandle(fake.actor);
			fake.actor.start();
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
				expect(events.filter(event => event.type === 'payload-refused').map(event => event.type === 'payload-refused' && [event.from, event.to])).toEqual(refusedByGuest.slice(0, PAYLOAD_REFUSALS_PER_WINDOW));
				for (const event of events.filter(event => event.type === 'payload-refused')) {
					expect(event.type === 'payload-refused' && event.message).toBe(`Invalid payload state transition from ${event.type === 'payload-refused' && event.from} to ${event.type === 'payload-refused' && event.to}`);
				}

				// Monotone through every snapshot the VM went through.
				expect(seen.map(payloadStateRank)).toEqual([...seen.map(payloadStateRank)].sort((a, b) => a - b));
				vm.kill();
				expect(await vm.died).toMatchObject({reason: DeathReason.KILLED, payloadState: current});
				expect(fake.leftTempDir()).toBe(false);
			} finally {
				fake.actor.stop();
			}
		}), {numRuns: 200});
	});
});
