import {describe, expect, test} from '@jest/globals';
import {useVmFixture} from '../helpers/vm-fixture.js';
import {InvalidPayloadTransitionError, VmStateError} from '../../src/errors.js';
import type {VmEvent} from '../../src/types.js';

function collect(events: {subscribe(observer: (event: VmEvent) => void): unknown}): VmEvent[] {
	const seen: VmEvent[] = [];
	events.subscribe(event => {
		seen.push(event);
	});
	return seen;
}

describe('payload state', () => {
	const {guest, vm} = useVmFixture();

	test('moves forward on the guest reports, each reported as an event from the guest', async () => {
		const machine = vm({kernel: guest('payload started', 'payload ready', 'payload finished 0', 'poweroff')});
		const events = collect(machine.events$);
		await machine.start();
		await expect(machine.died).resolves.toMatchObject({payloadState: 'Finished'});
		expect(events.filter(event => event.type === 'payload')).toEqual([
			{type: 'payload', cid: machine.cid, initiator: 'guest', from: 'Starting', to: 'Started'},
			{type: 'payload', cid: machine.cid, initiator: 'guest', from: 'Started', to: 'Ready'},
			{type: 'payload', cid: machine.cid, initiator: 'guest', from: 'Ready', to: 'Finished'},
		]);
	});

	test('skipping ahead is a forward move; an error report finishes the payload', async () => {
		const skipping = vm({kernel: guest('payload ready', 'poweroff')});
		const failing = vm({kernel: guest('payload started', 'payload error 3 out of disk', 'poweroff')});
		await Promise.all([skipping.start(), failing.start()]);
		await expect(skipping.died).resolves.toMatchObject({payloadState: 'Ready'});
		await expect(failing.died).resolves.toMatchObject({payloadState: 'Finished'});
	});

	test('backward and repeated reports from the channel are refused with the reference message', async () => {
		const machine = vm({kernel: guest('payload ready', 'payload started', 'payload ready', 'poweroff')});
		const events = collect(machine.events$);
		await machine.start();
		await expect(machine.died).resolves.toMatchObject({payloadState: 'Ready'});
		expect(events.filter(event => event.type === 'payload-refused')).toEqual([
			{type: 'payload-refused', cid: machine.cid, initiator: 'guest', from: 'Ready', to: 'Started', message: 'Invalid payload state transition from Ready to Started'},
			{type: 'payload-refused', cid: machine.cid, initiator: 'guest', from: 'Ready', to: 'Ready', message: 'Invalid payload state transition from Ready to Ready'},
		]);
	});

	test('the caller moves it forward; backward and repeated moves throw synchronously and change nothing', async () => {
		const machine = vm({kernel: guest('hang')});
		const events = collect(machine.events$);
		await machine.start();
		machine.updatePayloadState('Started');
		expect(machine.payloadState).toBe('Started');
		machine.updatePayloadState('Finished');
		expect(machine.payloadState).toBe('Finished');
		expect(() => {
			machine.updatePayloadState('Ready');
		}).toThrow(new InvalidPayloadTransitionError('Finished', 'Ready'));
		expect(() => {
			machine.updatePayloadState('Finished');
		}).toThrow('Invalid payload state transition from Finished to Finished');
		expect(machine.payloadState).toBe('Finished');
		expect(events.filter(event => event.type === 'payload')).toEqual([
			{type: 'payload', cid: machine.cid, initiator: 'caller', from: 'Starting', to: 'Started'},
			{type: 'payload', cid: machine.cid, initiator: 'caller', from: 'Started', to: 'Finished'},
		]);
		machine.kill();
		await expect(machine.died).resolves.toMatchObject({payloadState: 'Finished'});
	});

	test('a caller move before start or after death is refused', async () => {
		const machine = vm({kernel: guest('poweroff')});
		expect(() => {
			machine.updatePayloadState('Started');
		}).toThrow(VmStateError);
		await machine.start();
		await machine.died;
		expect(() => {
			machine.updatePayloadState('Started');
		}).toThrow(VmStateError);
	});
});
