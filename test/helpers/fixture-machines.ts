import {assign, emit, enqueueActions, fromCallback, sendTo, setup, spawnChild, type AnyActorRef} from 'xstate';

/**
 * Small machines of our own that use what the real machines use (nesting, parallel regions,
 * guards, delays, invoked and spawned actors, final states), for testing the generic tools
 * (recorder, replay, chart generator) independently of vmwarden's machines.
 */

/** A child that counts the pings its parent sends, and stops at three. */
export const counterMachine = setup({
	types: {
		context: {} as {count: number},
		events: {} as {type: 'PING'},
	},
	actions: {
		increment: assign({count: ({context}) => context.count + 1}),
	},
	guards: {
		isLastPing: ({context}) => context.count >= 2,
	},
}).createMachine({
	id: 'counter',
	context: {count: 0},
	initial: 'counting',
	states: {
		counting: {
			on: {
				PING: [
					{guard: 'isLastPing', target: 'done', actions: 'increment'},
					{actions: 'increment'},
				],
			},
		},
		done: {type: 'final'},
	},
});

/** An object that JSON cannot write as is. */
export class Gadget {
	readonly name = 'gadget';
	self: Gadget = this;
}

type WorkshopContext = {
	gadget: Gadget;
	cyclic: {label: string; self?: unknown};
	failure: Error | undefined;
	big: bigint;
	pings: number;
	child: AnyActorRef | undefined;
};

type WorkshopEvent =
	| {type: 'OPEN'}
	| {type: 'PING'}
	| {type: 'TICK'}
	| {type: 'BREAK'; reason: string}
	| {type: 'CLOSE'};

function makeCyclic(): {label: string; self?: unknown} {
	const cyclic: {label: string; self?: unknown} = {label: 'cycle'};
	cyclic.self = cyclic;
	return cyclic;
}

/**
 * A workshop: opens, spawns a counter child, pings it, runs a ticker and a lamp region in
 * parallel, and closes, breaks, or times out.
 */
export const workshopMachine = setup({
	types: {
		context: {} as WorkshopContext,
		events: {} as WorkshopEvent,
		emitted: {} as {type: 'opened'},
	},
	actors: {
		counter: counterMachine,
		ticker: fromCallback(({sendBack}) => {
			const timer = setInterval(() => {
				sendBack({type: 'TICK'});
			}, 5);
			return () => {
				clearInterval(timer);
			};
		}),
	},
	actions: {
		spawnCounter: enqueueActions(({enqueue}) => {
			enqueue(spawnChild('counter', {id: 'counter'}));
		}),
		pingCounter: sendTo('counter', {type: 'PING'}),
		countPing: assign({pings: ({context}) => context.pings + 1}),
		recordFailure: assign({failure: ({event}) => new Error(event.type === 'BREAK' ? event.reason : 'unknown')}),
		announceOpen: emit({type: 'opened'}),
	},
	guards: {
		hasPingedThrice: ({context}) => context.pings >= 3,
	},
	delays: {
		patience: 5000,
	},
}).createMachine({
	id: 'workshop',
	context: () => ({gadget: new Gadget(), cyclic: makeCyclic(), failure: undefined, big: 12_345_678_901_234_567_890n, pings: 0, child: undefined}),
	initial: 'closed',
	states: {
		closed: {
			on: {OPEN: {target: 'open', actions: 'announceOpen'}},
		},
		open: {
			type: 'parallel',
			entry: 'spawnCounter',
			after: {patience: '#workshop.timedOut'},
			on: {
				BREAK: {target: 'broken', actions: 'recordFailure'},
				CLOSE: {target: 'finished'},
			},
			states: {
				bench: {
					initial: 'idle',
					states: {
						idle: {
							on: {PING: {target: 'pinging', actions: ['pingCounter', 'countPing']}},
						},
						pinging: {
							always: {guard: 'hasPingedThrice', target: 'rested'},
							on: {PING: {actions: ['pingCounter', 'countPing']}},
						},
						rested: {},
					},
				},
				lamp: {
					initial: 'off',
					invoke: {id: 'ticker', src: 'ticker'},
					states: {
						off: {on: {TICK: 'on'}},
						on: {on: {TICK: 'off'}},
					},
				},
			},
		},
		broken: {type: 'final'},
		timedOut: {type: 'final'},
		finished: {type: 'final'},
	},
});
