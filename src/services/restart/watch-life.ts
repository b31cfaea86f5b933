import {fromCallback} from 'xstate';
import {payloadStateRank, type PayloadState} from '../payload/state.js';

/** What the watcher reads of a VM actor's snapshot (the VM machine's contract: state Running, `context.payloadState`). */
export interface LifeSnapshot {
	matches(state: 'Running'): boolean;
	context: {payloadState: PayloadState};
}

/** One life of a VM: the VM actor, seen only through its snapshots. */
export interface LifeRef {
	getSnapshot(): LifeSnapshot;
	subscribe(observer: {next: (snapshot: LifeSnapshot) => void; error: (error: unknown) => void}): {unsubscribe(): void};
}

/** What the watcher tells the restart machine about the life it watches, once each. */
export type LifeEvent = {type: 'LIFE.STARTED'} | {type: 'LIFE.READY'};

const READY_RANK = payloadStateRank('Ready');

/**
 * Watches one life of a VM (one VM actor) through its snapshots: `LIFE.STARTED` once it runs, then
 * `LIFE.READY` once its payload is Ready (or past it). Reads the current snapshot first, so a life
 * that got there before the watcher started is not missed. Its death reaches the restart machine
 * from the supervisor, which receives the VM actor's output.
 */
export const watchLife = fromCallback<LifeEvent, {vm: LifeRef}>(({input, sendBack}) => {
	let started = false;
	let ready = false;
	const look = (snapshot: LifeSnapshot) => {
		if (!started && snapshot.matches('Running')) {
			started = true;
			sendBack({type: 'LIFE.STARTED'});
		}

		if (started && !ready && payloadStateRank(snapshot.context.payloadState) >= READY_RANK) {
			ready = true;
			sendBack({type: 'LIFE.READY'});
		}
	};

	look(input.vm.getSnapshot());
	const subscription = input.vm.subscribe({next: look, error: () => undefined});
	return () => {
		subscription.unsubscribe();
	};
});
