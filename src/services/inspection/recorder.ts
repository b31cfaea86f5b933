import {closeSync, fsyncSync, openSync, writeSync} from 'node:fs';
import type {InspectionEvent, Observer} from 'xstate';
import {
	INSPECTION_FORMAT,
	INSPECTION_FORMAT_VERSION,
	type InspectionEventType,
	type InspectionFileHeader,
	type InspectionLine,
	type InspectionRecord,
	type RecordedSnapshot,
	type RecordedTransition,
} from './format.js';
import {toJsonValue, type SerializeOptions} from './serialize.js';

export interface InspectionRecorderOptions extends SerializeOptions {
	/** The JSON-lines file to write (created 0600, truncated unless `append`). */
	file: string;
	/** Append to an existing recording instead of starting a new one (no second header). */
	append?: boolean;
	/** Which inspection event types to record. Default: all. */
	types?: readonly InspectionEventType[];
	/** Buffered bytes that trigger a write. Default 64 KiB. Lines are also written on the next tick. */
	bufferBytes?: number;
	/**
	 * Called once if writing fails (disk full, file removed); recording stops then. Inspection
	 * observers must not throw into the actor system, so this is the only place such an error shows.
	 */
	onError?: (error: Error) => void;
}

/**
 * An XState inspection observer that writes the inspection stream to a file as JSON lines. Pass it
 * as `inspect` to `createActor`, `createVm` or `createSupervisor`; it sees every actor of the
 * system. Call `close()` when done: it writes what is buffered and closes the file.
 */
export interface InspectionRecorder extends Observer<InspectionEvent> {
	next: (event: InspectionEvent) => void;
	/** The file being written. */
	readonly file: string;
	/** Inspection events recorded so far. */
	readonly recorded: number;
	/** The write error that stopped the recording, if any. */
	readonly failure: Error | undefined;
	/** Writes buffered lines now (synchronously). */
	flush(): void;
	/** Writes buffered lines, syncs and closes the file; later events are ignored. Idempotent. */
	close(): void;
}

const defaultBufferBytes = 64 * 1024;

type Snapshotish = {status?: unknown; value?: unknown; context?: unknown; output?: unknown; error?: unknown};

function recordSnapshot(snapshot: unknown, options: SerializeOptions): RecordedSnapshot {
	const source = (typeof snapshot === 'object' && snapshot !== null ? snapshot : {}) as Snapshotish;
	const recorded: RecordedSnapshot = {status: typeof source.status === 'string' ? source.status : 'active'};
	for (const key of ['value', 'context', 'output', 'error'] as const) {
		if (source[key] !== undefined) {
			recorded[key] = toJsonValue(source[key], options);
		}
	}

	return recorded;
}

type TransitionLike = {eventType?: unknown; source?: {id?: unknown}; target?: ReadonlyArray<{id?: unknown}>};

function recordTransitions(transitions: readonly unknown[]): RecordedTransition[] {
	return transitions.map(transition => {
		const {eventType, source, target} = transition as TransitionLike;
		return {
			eventType: String(eventType),
			source: String(source?.id),
			targets: (target ?? []).map(node => String(node.id)),
		};
	});
}

type ActorRefInternals = {
	sessionId: string;
	id?: string;
	_parent?: {sessionId?: string};
	src?: unknown;
	logic?: {config?: unknown; id?: unknown};
};

/** Creates an {@link InspectionRecorder} writing to `options.file`. */
export function createInspectionRecorder(options: InspectionRecorderOptions): InspectionRecorder {
	const {file, append = false, types, bufferBytes = defaultBufferBytes, onError} = options;
	const serializeOptions: SerializeOptions = {maxDepth: options.maxDepth, maxStringLength: options.maxStringLength};
	const recordedTypes = types === undefined ? undefined : new Set<string>(types);
	// Opening synchronously makes a bad path fail here, at the caller, not later in the stream.
	let descriptor: number | undefined = openSync(file, append ? 'a' : 'w', 0o600);
	const startedAt = Date.now();
	const definitions = new WeakMap<object, number>();
	let buffer: string[] = [];
	let bufferedBytes = 0;
	let flushScheduled = false;
	let seq = 0;
	let nextDefinitionId = 0;
	let writeError: Error | undefined;

	const flush = (): void => {
		if (descriptor === undefined || buffer.length === 0) {
			return;
		}

		const chunk = buffer.join('');
		buffer = [];
		bufferedBytes = 0;
		try {
			const bytes = Buffer.from(chunk);
			let offset = 0;
			while (offset < bytes.length) {
				offset += writeSync(descriptor, bytes, offset);
			}
		} catch (error) {
			writeError = error instanceof Error ? error : new Error(String(error));
			closeSync(descriptor);
			descriptor = undefined;
			onError?.(writeError);
		}
	};

	const scheduledFlush = (): void => {
		flushScheduled = false;
		flush();
	};

	const write = (line: InspectionLine): void => {
		const text = `${JSON.stringify(line)}\n`;
		buffer.push(text);
		bufferedBytes += text.length;
		if (bufferedBytes >= bufferBytes) {
			flush();
		} else if (!flushScheduled) {
			flushScheduled = true;
			setImmediate(scheduledFlush).unref();
		}
	};

	if (!append) {
		const header: InspectionFileHeader = {
			type: 'header',
			format: INSPECTION_FORMAT,
			version: INSPECTION_FORMAT_VERSION,
			startedAt: new Date(startedAt).toISOString(),
		};
		write(header);
	}

	const definitionOf = (actorRef: ActorRefInternals): number | undefined => {
		const logic = actorRef.logic;
		const config = logic?.config;
		// Only machines have a definition worth drawing; callback and promise logic are functions.
		if (logic === undefined || typeof config !== 'object' || config === null) {
			return undefined;
		}

		let definitionId = definitions.get(logic);
		if (definitionId === undefined) {
			definitionId = nextDefinitionId++;
			definitions.set(logic, definitionId);
			const logicId = (config as {id?: unknown}).id;
			write({
				type: 'definition',
				definitionId,
				logicId: typeof logicId === 'string' ? logicId : '(machine)',
				config: toJsonValue(config, {...serializeOptions, maxDepth: Math.max(serializeOptions.maxDepth ?? 0, 40)}),
			});
		}

		return definitionId;
	};

	const toRecord = (event: InspectionEvent): InspectionRecord => {
		const actorRef = event.actorRef as unknown as ActorRefInternals;
		const record: InspectionRecord = {
			type: event.type,
			seq,
			time: Date.now() - startedAt,
			rootId: event.rootId,
			sessionId: actorRef.sessionId,
			actorId: actorRef.id ?? actorRef.sessionId,
		};
		switch (event.type) {
			case '@xstate.actor': {
				const parentId = actorRef._parent?.sessionId;
				if (parentId !== undefined) {
					record.parentId = parentId;
				}

				if (typeof actorRef.src === 'string') {
					record.src = actorRef.src;
				}

				const definitionId = definitionOf(actorRef);
				if (definitionId !== undefined) {
					record.definitionId = definitionId;
				}

				break;
			}

			case '@xstate.event': {
				const sourceId = (event.sourceRef as {sessionId?: string} | undefined)?.sessionId;
				if (sourceId !== undefined) {
					record.sourceId = sourceId;
				}

				record.event = toJsonValue(event.event, serializeOptions);
				break;
			}

			case '@xstate.snapshot':
			case '@xstate.transition': {
				record.event = toJsonValue(event.event, serializeOptions);
				record.snapshot = recordSnapshot(event.snapshot, serializeOptions);
				break;
			}

			case '@xstate.microstep': {
				record.event = toJsonValue(event.event, serializeOptions);
				record.snapshot = recordSnapshot(event.snapshot, serializeOptions);
				record.transitions = recordTransitions(event._transitions);
				break;
			}

			case '@xstate.action': {
				record.action = {type: String(event.action.type)};
				if (event.action.params !== undefined) {
					record.action.params = toJsonValue(event.action.params, serializeOptions);
				}

				break;
			}
		}

		return record;
	};

	const recorder: InspectionRecorder = {
		file,
		get recorded() {
			return seq;
		},
		get failure() {
			return writeError;
		},
		next(event: InspectionEvent) {
			if (descriptor === undefined || (recordedTypes !== undefined && !recordedTypes.has(event.type))) {
				return;
			}

			try {
				// A definition line is written inside toRecord; the record itself follows it.
				const record = toRecord(event);
				write(record);
				seq++;
			} catch (error) {
				// Never break the inspected system over a recording problem.
				writeError ??= error instanceof Error ? error : new Error(String(error));
				onError?.(writeError);
			}
		},
		error() {
			// The inspection stream does not error; nothing to record.
		},
		complete() {
			recorder.close();
		},
		flush,
		close() {
			if (descriptor === undefined) {
				return;
			}

			flush();
			if (descriptor !== undefined) {
				fsyncSync(descriptor);
				closeSync(descriptor);
				descriptor = undefined;
			}
		},
	};
	return recorder;
}
