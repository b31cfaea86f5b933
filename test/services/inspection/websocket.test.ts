import {mkdtempSync, rmSync} from 'node:fs';
import {createServer, Socket} from 'node:net';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {createActor} from 'xstate';
import {createInspectionRecorder} from '../../../src/services/inspection/recorder.js';
import {replayInspection} from '../../../src/services/inspection/replay.js';
import {workshopMachine} from '../../helpers/fixture-machines.js';

/** A free loopback port (the inspector server takes a fixed port). */
async function freePort(): Promise<number> {
	return new Promise((resolve, reject) => {
		const server = createServer();
		server.once('error', reject);
		server.listen(0, '127.0.0.1', () => {
			const address = server.address();
			server.close(() => {
				resolve(typeof address === 'object' && address !== null ? address.port : 0);
			});
		});
	});
}

/**
 * createWebSocketReceiver offers no way to close its connection, and the inspector server does not
 * end open connections when stopped: end this test's sockets on its own port so Jest can exit.
 */
function closeSocketsOn(port: number): void {
	const handles = (process as unknown as {_getActiveHandles(): unknown[]})._getActiveHandles();
	for (const handle of handles) {
		if (handle instanceof Socket && (handle.remotePort === port || handle.localPort === port)) {
			handle.destroy();
		}
	}
}

type Received = {type: string; sessionId: string; snapshot?: {value?: unknown}};

async function until(condition: () => boolean, timeoutMs = 5000): Promise<void> {
	const deadline = Date.now() + timeoutMs;
	while (!condition()) {
		if (Date.now() > deadline) {
			throw new Error('timed out');
		}

		await new Promise(resolve => setTimeout(resolve, 20));
	}
}

test('the Stately WebSocket inspector carries a live system and a replayed recording through a local inspector server', async () => {
	const {createWebSocketInspector, createWebSocketReceiver} = await import('@statelyai/inspect');
	const {createInspectorServer} = await import('@statelyai/inspect/server');
	const port = await freePort();
	const server = createInspectorServer({port, autoOpen: false});
	const dir = mkdtempSync(join(tmpdir(), 'vmwarden-ws-'));
	const received: Received[] = [];
	const receiver = createWebSocketReceiver({server: `ws://127.0.0.1:${port}`});
	const subscription = receiver.subscribe(event => {
		received.push(event as Received);
	});
	const inspector = createWebSocketInspector({url: `ws://127.0.0.1:${port}`});
	try {
		const file = join(dir, 'workshop.jsonl');
		const recorder = createInspectionRecorder({file});
		const actor = createActor(workshopMachine, {
			inspect(event) {
				recorder.next(event);
				inspector.inspect.next?.(event);
			},
		});
		actor.start();
		actor.send({type: 'OPEN'});
		actor.send({type: 'CLOSE'});
		recorder.close();
		const rootSnapshots = () => received.filter(event => event.type === '@xstate.snapshot' && event.sessionId === actor.sessionId).map(event => event.snapshot?.value);
		await until(() => rootSnapshots().includes('finished'));
		const live = rootSnapshots();
		expect(live[0]).toBe('closed');

		// The same stream again, from the file.
		const before = received.length;
		await replayInspection(file, inspector);
		await until(() => rootSnapshots().length === 2 * live.length);
		expect(rootSnapshots().slice(live.length)).toEqual(live);
		expect(received.length).toBeGreaterThan(before);
	} finally {
		inspector.stop();
		subscription.unsubscribe();
		server.stop();
		closeSocketsOn(port);
		rmSync(dir, {recursive: true, force: true});
	}
});
