import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {createActor, type InspectionEvent} from 'xstate';
import {createInspectionRecorder} from '../../../src/services/inspection/recorder.js';
import {readInspection, replayInspection} from '../../../src/services/inspection/replay.js';
import type {InspectionRecord} from '../../../src/services/inspection/format.js';
import {workshopMachine} from '../../helpers/fixture-machines.js';
import {summarize, type EventSummary} from '../../helpers/summarize-inspection.js';
import {InspectionFileError} from '../../../src/errors.js';

let dir: string;

beforeEach(() => {
	dir = mkdtempSync(join(tmpdir(), 'vmwarden-inspect-'));
});

afterEach(() => {
	rmSync(dir, {recursive: true, force: true});
});

/** Runs the workshop through open, pings (the child finishes), and close; returns the live stream. */
async function runWorkshop(file: string): Promise<EventSummary[]> {
	const recorder = createInspectionRecorder({file});
	const live: EventSummary[] = [];
	const actor = createActor(workshopMachine, {
		inspect(event: InspectionEvent) {
			recorder.next(event);
			live.push(summarize(event));
		},
	});
	actor.start();
	actor.send({type: 'OPEN'});
	// Let the ticker tick a few times.
	await new Promise(resolve => setTimeout(resolve, 40));
	actor.send({type: 'PING'});
	actor.send({type: 'PING'});
	actor.send({type: 'PING'});
	actor.send({type: 'BREAK', reason: 'dropped the gadget'});
	expect(actor.getSnapshot().status).toBe('done');
	recorder.close();
	return live;
}

test('a recording replays into an observer with the same actors, events and snapshots in the same order', async () => {
	const file = join(dir, 'workshop.jsonl');
	const live = await runWorkshop(file);
	const replayed: EventSummary[] = [];
	const summary = await replayInspection(file, {next: event => replayed.push(summarize(event))});

	expect(replayed).toEqual(live);
	expect(summary.events).toBe(live.length);
	const actors = new Set(live.map(event => event.sessionId));
	expect(summary.actors).toBe(actors.size);
	// The root, the spawned counter and the invoked ticker are all there, with their parents.
	const registered = live.filter(event => event.type === '@xstate.actor').map(event => [event.actorId, event.parentId === undefined]);
	expect(registered).toEqual(expect.arrayContaining([['counter', false], ['ticker', false]]));
	expect(registered.filter(([, isRoot]) => isRoot)).toHaveLength(1);
	// The child machine's run ended in its final state, and that is in the replay.
	const counterSnapshots = replayed.filter(event => event.actorId === 'counter' && event.type === '@xstate.snapshot');
	expect(counterSnapshots.at(-1)).toMatchObject({value: 'done', status: 'done'});
	const rootSnapshots = replayed.filter(event => event.parentId === undefined && event.type === '@xstate.snapshot' && event.actorId !== 'counter' && event.actorId !== 'ticker');
	expect(rootSnapshots.at(-1)).toMatchObject({value: 'broken', status: 'done'});
});

test('non-JSON values in context and events are recorded safely', async () => {
	const file = join(dir, 'workshop.jsonl');
	await runWorkshop(file);
	const lines = readInspection(file);
	expect(lines[0]).toMatchObject({type: 'header', format: 'vmwarden-inspection', version: 1});
	const records = lines.filter((line): line is InspectionRecord => line.type === '@xstate.snapshot');
	const last = records.filter(record => record.actorId === 'workshop' || record.snapshot?.value === 'broken').at(-1);
	expect(last?.snapshot?.context).toMatchObject({
		gadget: {$instance: 'Gadget'},
		cyclic: {label: 'cycle', self: '[Circular]'},
		failure: {$error: 'Error', message: 'dropped the gadget'},
		big: '12345678901234567890n',
		pings: 3,
	});
	const definitions = lines.filter(line => line.type === 'definition').map(line => line.type === 'definition' && line.logicId);
	expect(definitions).toEqual(['workshop', 'counter']);
	// Every line is one JSON object (the file is JSON lines).
	for (const text of readFileSync(file, 'utf8').trimEnd().split('\n')) {
		expect(() => JSON.parse(text) as unknown).not.toThrow();
	}
});

test('a recording replays into an inspector of @statelyai/inspect as the live system did', async () => {
	const {createInspector} = await import('@statelyai/inspect');
	type Sent = {type: string; sessionId: string; name?: string; parentId?: string; snapshot?: {value?: unknown; status?: unknown}; event?: {type?: string}};
	const collect = (sent: Sent[]) => createInspector({send(event) {
		sent.push(event);
	}});
	const liveSent: Sent[] = [];
	const liveInspector = collect(liveSent);
	const file = join(dir, 'workshop.jsonl');
	const recorder = createInspectionRecorder({file});
	const actor = createActor(workshopMachine, {
		inspect(event) {
			recorder.next(event);
			liveInspector.inspect.next?.(event);
		},
	});
	actor.start();
	actor.send({type: 'OPEN'});
	actor.send({type: 'PING'});
	actor.send({type: 'CLOSE'});
	recorder.close();
	const replayedSent: Sent[] = [];
	await replayInspection(file, collect(replayedSent));
	// The Stately inspector converts on a timer; wait until both sides are drained.
	await new Promise(resolve => setTimeout(resolve, 50));

	const shape = (event: Sent) => ({
		type: event.type,
		sessionId: event.sessionId,
		name: event.name,
		parentId: event.parentId,
		event: event.type === '@xstate.actor' ? undefined : event.event?.type,
		value: event.type === '@xstate.snapshot' ? event.snapshot?.value : undefined,
		status: event.type === '@xstate.snapshot' ? event.snapshot?.status : undefined,
	});
	expect(replayedSent.length).toBeGreaterThan(5);
	expect(replayedSent.map(shape)).toEqual(liveSent.map(shape));
	// The machine definition reaches the inspector, so it can draw the chart.
	const rootActor = replayedSent.find(event => event.type === '@xstate.actor' && event.name === 'workshop') as {definition?: string} | undefined;
	expect(JSON.parse(rootActor?.definition ?? '{}')).toMatchObject({id: 'workshop', initial: 'closed'});
});

test('a file that is not a recording is refused with a typed error', async () => {
	const file = join(dir, 'not-a-recording.jsonl');
	writeFileSync(file, '{"hello":"world"}\n');
	await expect(replayInspection(file, () => undefined)).rejects.toThrow(InspectionFileError);
	writeFileSync(file, '');
	await expect(replayInspection(file, () => undefined)).rejects.toThrow(/empty file/);
});

test('a recorder for a path that cannot be created throws at once', () => {
	expect(() => createInspectionRecorder({file: join(dir, 'missing', 'x.jsonl')})).toThrow(/ENOENT/);
});

test('close() writes everything, is idempotent, and later events are ignored', () => {
	const file = join(dir, 'closed.jsonl');
	const recorder = createInspectionRecorder({file, types: ['@xstate.snapshot']});
	const actor = createActor(workshopMachine, {inspect: recorder});
	actor.start();
	recorder.close();
	recorder.close();
	const before = readFileSync(file, 'utf8');
	actor.send({type: 'OPEN'});
	actor.stop();
	expect(readFileSync(file, 'utf8')).toBe(before);
	const records = readInspection(file).filter(line => line.type !== 'header');
	expect(records.map(record => record.type)).toEqual(['@xstate.snapshot']);
	expect(recorder.recorded).toBe(1);
});
