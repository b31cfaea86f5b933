import type {InspectionEvent} from 'xstate';

/** What a receiver can tell about one inspection event: who, what, and which state. */
export interface EventSummary {
	type: string;
	sessionId: string;
	actorId: string;
	parentId: string | undefined;
	sourceId: string | undefined;
	eventType: string | undefined;
	value: unknown;
	status: unknown;
	action: string | undefined;
}

/** Reduces a live or replayed inspection event to comparable data (JSON-normalized). */
export function summarize(event: InspectionEvent): EventSummary {
	const actorRef = event.actorRef as unknown as {sessionId: string; id: string; _parent?: {sessionId: string}};
	const withEvent = event as {event?: {type?: string}; snapshot?: {value?: unknown; status?: unknown}; sourceRef?: {sessionId: string}; action?: {type: string}};
	return JSON.parse(JSON.stringify({
		type: event.type,
		sessionId: actorRef.sessionId,
		actorId: actorRef.id,
		parentId: actorRef._parent?.sessionId,
		sourceId: withEvent.sourceRef?.sessionId,
		eventType: withEvent.event?.type,
		value: withEvent.snapshot?.value,
		status: withEvent.snapshot?.status,
		action: withEvent.action?.type,
	})) as EventSummary;
}
