import type {JsonValue} from './serialize.js';

/**
 * The inspection recording format: JSON lines. The first line is a {@link InspectionFileHeader};
 * then, in the order XState emitted them, one {@link InspectionRecord} per inspection event, and
 * a {@link InspectionDefinitionRecord} before the first actor of each machine definition.
 */
export const INSPECTION_FORMAT = 'vmwarden-inspection';
export const INSPECTION_FORMAT_VERSION = 1;

export interface InspectionFileHeader {
	type: 'header';
	format: typeof INSPECTION_FORMAT;
	version: number;
	/** When the recording started (ISO 8601). */
	startedAt: string;
}

/** A machine's definition (its config, as the Stately inspector wants it), written once. */
export interface InspectionDefinitionRecord {
	type: 'definition';
	definitionId: number;
	/** The machine's id. */
	logicId: string;
	config: JsonValue;
}

/** An actor's snapshot as recorded. Fields absent from the live snapshot are absent here. */
export interface RecordedSnapshot {
	status: string;
	value?: JsonValue;
	context?: JsonValue;
	output?: JsonValue;
	error?: JsonValue;
}

/** A transition taken in a microstep. */
export interface RecordedTransition {
	eventType: string;
	/** The source state node's id. */
	source: string;
	/** The target state nodes' ids (empty for a targetless transition). */
	targets: string[];
}

/** The XState inspection event types. */
export type InspectionEventType = '@xstate.actor' | '@xstate.event' | '@xstate.snapshot' | '@xstate.microstep' | '@xstate.action' | '@xstate.transition';

/** One inspection event. */
export interface InspectionRecord {
	type: InspectionEventType;
	/** Position in the stream, from 0. */
	seq: number;
	/** Milliseconds since the recording started. */
	time: number;
	rootId: string;
	/** The actor the event is about (for `@xstate.event`: the recipient). */
	sessionId: string;
	/** The actor's id (its invoke id, spawn id or system-given id). */
	actorId: string;
	/** `@xstate.actor`: the parent's session id, when it has one. */
	parentId?: string;
	/** `@xstate.actor`: the name of the actor's logic in its parent's `setup` (`src`), when it has one. */
	src?: string;
	/** `@xstate.actor`: the machine definition, when the actor is a machine. */
	definitionId?: number;
	/** `@xstate.event`: the sender's session id, when there is one. */
	sourceId?: string;
	/** The event (`@xstate.event`: the one sent; snapshot/microstep: the one that caused it). */
	event?: JsonValue;
	/** `@xstate.snapshot`, `@xstate.microstep`, `@xstate.transition`. */
	snapshot?: RecordedSnapshot;
	/** `@xstate.microstep`. */
	transitions?: RecordedTransition[];
	/** `@xstate.action`. */
	action?: {type: string; params?: JsonValue};
}

/** Whether a value names one of XState's inspection event types. */
export function isInspectionEventType(type: unknown): type is InspectionEventType {
	return type === '@xstate.actor' || type === '@xstate.event' || type === '@xstate.snapshot'
		|| type === '@xstate.microstep' || type === '@xstate.action' || type === '@xstate.transition';
}

/** Any line of a recording. */
export type InspectionLine = InspectionFileHeader | InspectionDefinitionRecord | InspectionRecord;
