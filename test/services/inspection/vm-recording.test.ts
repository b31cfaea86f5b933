import {mkdtempSync, readFileSync, rmSync} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {describe, expect, test} from '@jest/globals';
import type {InspectionEvent} from 'xstate';
import {createInspectionRecorder} from '../../../src/services/inspection/recorder.js';
import {readInspection, replayInspection} from '../../../src/services/inspection/replay.js';
import type {InspectionRecord} from '../../../src/services/inspection/format.js';
import {createSupervisor} from '../../../src/supervisor.js';
import {SIM_PATH, silentLogger, simulatorRunning, useVmFixture} from '../../helpers/vm-fixture.js';
import {summarize, type EventSummary} from '../../helpers/summarize-inspection.js';

describe('recording vmwarden on crosvm-sim', () => {
	const {context, guest, vm} = useVmFixture();

	test('a VM\'s whole actor system is recorded, and the recording replays the same actors and snapshots in order', async () => {
		const file = path.join(context.scripts, 'vm.jsonl');
		const recorder = createInspectionRecorder({file});
		const live: EventSummary[] = [];
		const machine = vm({kernel: guest('payload started', 'payload ready', 'fail MICRODROID_PAYLOAD_HAS_CHANGED|digest', 'poweroff')}, {
			inspect(event: InspectionEvent) {
				recorder.next(event);
				live.push(summarize(event));
			},
		});
		await machine.start();
		const death = await machine.died;
		recorder.close();
		expect(death.reason).toBe('MICRODROID_PAYLOAD_HAS_CHANGED');

		const replayed: EventSummary[] = [];
		await replayInspection(file, event => replayed.push(summarize(event)));
		expect(replayed).toEqual(live);

		const records = readInspection(file).filter((line): line is InspectionRecord => line.type !== 'header' && line.type !== 'definition');
		// The inspect option reached the VM and every actor it invoked.
		const sources = records.filter(record => record.type === '@xstate.actor').map(record => record.src ?? record.actorId);
		expect(sources).toEqual(expect.arrayContaining(['launchVmm', 'watchVmm', 'readPayloadChannel']));
		const root = records.find(record => record.type === '@xstate.actor')!.sessionId;
		const values = records.filter(record => record.type === '@xstate.snapshot' && record.sessionId === root).map(record => record.snapshot?.value);
		expect(values[0]).toEqual({NotStarted: 'idle'});
		expect(values).toContainEqual(expect.objectContaining({Running: expect.objectContaining({payload: 'Ready'})}));
		expect(values.at(-1)).toBe('Dead');
		// The death record is in the last snapshot's context, as JSON.
		const last = records.filter(record => record.type === '@xstate.snapshot' && record.sessionId === root).at(-1)!;
		expect(last.snapshot?.status).toBe('done');
		expect(last.snapshot?.context).toMatchObject({death: {reason: 'MICRODROID_PAYLOAD_HAS_CHANGED', failureContext: 'digest', payloadState: 'Ready'}});
	});

	test('a supervisor\'s recording holds the supervisor, each VM it spawned and their invoked actors', async () => {
		const file = path.join(context.scripts, 'supervisor.jsonl');
		const recorder = createInspectionRecorder({file});
		const stateDir = mkdtempSync(path.join(os.tmpdir(), 'vmw-rec-state-'));
		const supervisor = createSupervisor({crosvmPath: SIM_PATH, tempRoot: context.tempRoot, stateDir, cidRange: {first: 4000, last: 4009}, logger: silentLogger(), inspect: recorder});
		try {
			const vms = await Promise.all([supervisor.createVm({kernel: guest('payload started', 'hang')}), supervisor.createVm({kernel: guest('reboot')})]);
			await Promise.all(vms.map(async machine => machine.start()));
			await vms[1].died;
			await supervisor.shutdown();
		} finally {
			recorder.close();
			rmSync(stateDir, {recursive: true, force: true});
		}

		const records = readInspection(file).filter((line): line is InspectionRecord => line.type !== 'header' && line.type !== 'definition');
		const actors = records.filter(record => record.type === '@xstate.actor');
		const rootSession = actors[0]!.sessionId;
		expect(actors.filter(record => record.parentId === rootSession).map(record => record.actorId)).toEqual(expect.arrayContaining(['vm.4000', 'vm.4001']));
		const vmSessions = new Set(actors.filter(record => record.actorId.startsWith('vm.')).map(record => record.sessionId));
		expect(actors.filter(record => record.parentId !== undefined && vmSessions.has(record.parentId)).map(record => record.src)).toEqual(expect.arrayContaining(['launchVmm', 'watchVmm', 'readPayloadChannel', 'requestStop']));
		const rootValues = records.filter(record => record.type === '@xstate.snapshot' && record.sessionId === rootSession).map(record => record.snapshot?.value);
		expect(rootValues.at(-1)).toBe('ShutDown');

		const replayed: EventSummary[] = [];
		const summary = await replayInspection(file, {next: event => replayed.push(summarize(event))});
		expect(summary.events).toBe(records.length);
		expect(replayed.map(event => [event.type, event.sessionId, event.value])).toEqual(records.map(record => [record.type, record.sessionId, record.snapshot?.value]));
	});

	test('a recording names the VMM environment\'s variables but never holds their values', async () => {
		const file = path.join(context.scripts, 'environment.jsonl');
		const recorder = createInspectionRecorder({file});
		let environ = '';
		const supervisor = createSupervisor({crosvmPath: SIM_PATH, tempRoot: context.tempRoot, cidRange: {first: 4010, last: 4019}, logger: silentLogger(), inspect: recorder, vmmEnvironment: {PATH: process.env['PATH']!, CROSVM_API_TOKEN: 'hunter2-secret-value'}});
		try {
			const machine = await supervisor.createVm({kernel: guest('hang')});
			await machine.start();
			await simulatorRunning(machine.pid!);
			environ = readFileSync(`/proc/${machine.pid}/environ`, 'utf8');
			await supervisor.shutdown();
		} finally {
			recorder.close();
		}

		// The supervisor's vmmEnvironment is its VMs' whole environment.
		expect(environ.split('\0').filter(Boolean).sort()).toEqual(['CROSVM_API_TOKEN=hunter2-secret-value', `PATH=${process.env['PATH']}`]);
		const text = readFileSync(file, 'utf8');
		expect(text).toContain('CROSVM_API_TOKEN');
		expect(text).not.toContain('hunter2-secret-value');
	});
});
