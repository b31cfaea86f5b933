import {createReadStream, readFileSync} from 'node:fs';
import {createInterface} from 'node:readline';
import {setTimeout as delay} from 'node:timers/promises';
import type {AnyEventObject, InspectionEvent, Observer} from 'xstate';
import {InspectionFileError} from '../../errors.js';
import {
	INSPECTION_FORMAT,
	isInspectionEventType,
	type InspectionDefinitionRecord,
	type InspectionLine,
	type InspectionRecord,
	type RecordedSnapshot,
} from './format.js';
import type {JsonValue} from './serialize.js';

/**
 * Anything that takes inspection events: a function, an observer (`{next}`), or an inspector that
 * carries its observer as `inspect` (the inspectors of `@statelyai/inspect`).
 */
export type InspectionReceiver =
	| ((event: InspectionEvent) => void)
	| Partial<Observer<InspectionEvent>>
	| {inspect: Partial<Observer<InspectionEvent>> | ((event: InspectionEvent) => void)};

export interface ReplayOptions {
	/**
	 * Replay with the recorded pauses, divided by this factor (1: as recorded, 10: ten times
	 * faster). Default: no pauses.
	 */
	speed?: number;
	/** Call the receiver's `complete()` at the end. Default true. */
	complete?: boolean;
}

export interface ReplaySummary {
	/** Inspection events delivered. */
	events: number;
	/** Distinct actors (session ids) seen. */
	actors: number;
}

/**
 * The stand-in for an actor that a replayed event carries as `actorRef` (and `sourceRef`): it has
 * what inspectors read (`id`, `sessionId`, `_parent`, `logic.config`, `getSnapshot()`), and
 * ignores what is sent to it.
 */
export interface ReplayedActorRef {
	readonly id: string;
	readonly sessionId: string;
	readonly _parent: ReplayedActorRef | undefined;
	readonly src: string | undefined;
	readonly logic: {config: JsonValue | undefined};
	/** The last snapshot replayed for this actor. */
	getSnapshot(): RecordedSnapshot;
	send(event: AnyEventObject): void;
}

function toObserverFunction(receiver: InspectionReceiver): {next: (event: InspectionEvent) => void; complete: () => void} {
	const target = typeof receiver === 'object' && receiver !== null && 'inspect' in receiver ? receiver.inspect : receiver;
	if (typeof target === 'function') {
		return {next: target, complete() {}};
	}

	return {
		next(event) {
			target.next?.(event);
		},
		complete() {
			target.complete?.();
		},
	};
}

function parseLine(file: string, lineNumber: number, text: string): InspectionLine {
	let parsed: unknown;
	try {
		parsed = JSON.parse(text);
	} catch {
		throw new InspectionFileError(file, lineNumber, 'not a JSON line');
	}

	const type = (parsed as {type?: unknown} | null)?.type;
	if (lineNumber === 1) {
		if (type !== 'header' || (parsed as {format?: unknown}).format !== INSPECTION_FORMAT) {
			throw new InspectionFileError(file, lineNumber, `not a ${INSPECTION_FORMAT} recording`);
		}
	} else if (type !== 'definition' && !isInspectionEventType(type)) {
		throw new InspectionFileError(file, lineNumber, `unknown record type ${JSON.stringify(type)}`);
	}

	return parsed as InspectionLine;
}

/** Reads a whole recording into memory: the header, definitions and records, in order. */
export function readInspection(file: string): InspectionLine[] {
	return readFileSync(file, 'utf8')
		.split('\n')
		.filter(line => line !== '')
		.map((line, index) => parseLine(file, index + 1, line));
}

/** Rebuilds live-looking inspection events from records, keeping one stand-in per actor. */
class InspectionRebuilder {
	readonly #actors = new Map<string, ReplayedActorRef & {snapshot: RecordedSnapshot}>();
	readonly #definitions = new Map<number, JsonValue>();

	get actorCount(): number {
		return this.#actors.size;
	}

	define(record: InspectionDefinitionRecord): void {
		this.#definitions.set(record.definitionId, record.config);
	}

	#actor(sessionId: string, record?: InspectionRecord): ReplayedActorRef & {snapshot: RecordedSnapshot} {
		let actor = this.#actors.get(sessionId);
		if (actor === undefined || record?.type === '@xstate.actor') {
			const parent = record?.parentId === undefined ? undefined : this.#actor(record.parentId);
			const created = {
				id: record?.actorId ?? sessionId,
				sessionId,
				_parent: parent,
				src: record?.src,
				logic: {config: record?.definitionId === undefined ? undefined : this.#definitions.get(record.definitionId)},
				snapshot: actor?.snapshot ?? {status: 'active'},
				getSnapshot() {
					return created.snapshot;
				},
				send() {
					// A replayed actor cannot act.
				},
			};
			actor = created;
			this.#actors.set(sessionId, actor);
		}

		return actor;
	}

	rebuild(record: InspectionRecord): InspectionEvent {
		const actorRef = this.#actor(record.sessionId, record);
		const base = {rootId: record.rootId, actorRef};
		const event = (record.event ?? {type: ''}) as AnyEventObject;
		if (record.snapshot !== undefined) {
			actorRef.snapshot = record.snapshot;
		}

		switch (record.type) {
			case '@xstate.actor':
				return {...base, type: record.type};
			case '@xstate.event':
				return {
					...base,
					type: record.type,
					event,
					sourceRef: record.sourceId === undefined ? undefined : this.#actor(record.sourceId),
				};
			case '@xstate.action':
				return {...base, type: record.type, action: record.action ?? {type: ''}} as unknown as InspectionEvent;
			case '@xstate.microstep':
				return {
					...base,
					type: record.type,
					event,
					snapshot: record.snapshot,
					_transitions: (record.transitions ?? []).map(transition => ({
						eventType: transition.eventType,
						source: {id: transition.source},
						target: transition.targets.map(id => ({id})),
					})),
				} as unknown as InspectionEvent;
			default:
				return {...base, type: record.type, event, snapshot: record.snapshot} as unknown as InspectionEvent;
		}
	}
}

/**
 * Feeds a recording made by `createInspectionRecorder` into an inspector receiver, in the recorded
 * order: the same actors (session ids, ids, parents, machine definitions), events and snapshots.
 * Streams the file, so long recordings replay in constant memory.
 */
export async function replayInspection(file: string, receiver: InspectionReceiver, options: ReplayOptions = {}): Promise<ReplaySummary> {
	const observer = toObserverFunction(receiver);
	const rebuilder = new InspectionRebuilder();
	const lines = createInterface({input: createReadStream(file, {encoding: 'utf8'}), crlfDelay: Number.POSITIVE_INFINITY});
	let lineNumber = 0;
	let events = 0;
	let lastTime: number | undefined;
	try {
		for await (const text of lines) {
			lineNumber++;
			if (text === '') {
				continue;
			}

			const line = parseLine(file, lineNumber, text);
			if (line.type === 'header') {
				continue;
			}

			if (line.type === 'definition') {
				rebuilder.define(line);
				continue;
			}

			if (options.speed !== undefined && lastTime !== undefined && line.time > lastTime) {
				await delay((line.time - lastTime) / options.speed);
			}

			lastTime = line.time;
			observer.next(rebuilder.rebuild(line));
			events++;
		}
	} finally {
		lines.close();
	}

	if (lineNumber === 0) {
		throw new InspectionFileError(file, 1, 'empty file');
	}

	if (options.complete ?? true) {
		observer.complete();
	}

	return {events, actors: rebuilder.actorCount};
}
