import {afterAll, beforeAll, describe, expect, test} from '@jest/globals';
import fc from 'fast-check';
import {QmpError} from '../../../src/errors.js';
import {qmpExecute} from '../../../src/services/qemu/qmp-client.js';
import {GREETING, RETURN, startQmpPeer} from './qmp-peer.js';

let peer: Awaited<ReturnType<typeof startQmpPeer>>;

beforeAll(async () => {
	peer = await startQmpPeer();
});

afterAll(async () => {
	await peer.close();
});

type Kind = 'greeting' | 'return' | 'error' | 'event' | 'blank' | 'invalid';

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** The QMP specification's message shapes, as the reference model reads one line. */
function kindOf(line: string): Kind {
	if (line.trim() === '') {
		return 'blank';
	}

	let value: unknown;
	try {
		value = JSON.parse(line);
	} catch {
		return 'invalid';
	}

	if (!isObject(value)) {
		return 'invalid';
	}

	if (isObject(value['QMP'])) {
		return 'greeting';
	}

	if (typeof value['event'] === 'string') {
		return 'event';
	}

	if (isObject(value['error']) && typeof value['error']['class'] === 'string' && typeof value['error']['desc'] === 'string') {
		return 'error';
	}

	return 'return' in value && !('error' in value) ? 'return' : 'invalid';
}

/** The messages of the complete lines of what the peer sent, blank lines and events left out. */
function messagesOf(bytes: Uint8Array): Kind[] {
	const lines = Buffer.from(bytes).toString('utf8').split('\n').slice(0, -1);
	return lines.map(kindOf).filter(kind => kind !== 'blank' && kind !== 'event');
}

const line = fc.oneof(
	fc.constantFrom(GREETING, RETURN, '{"return": []}\n', '{"error": {"class": "GenericError", "desc": "x"}}\n', '{"event": "STOP"}\n', '\n', '\r\n', '{"QMP": 1}\n', '[]\n'),
	fc.json().map(text => `${text}\n`),
	fc.string({unit: 'binary', maxLength: 30}),
);
const stream = fc.tuple(fc.array(line, {maxLength: 12}), fc.uint8Array({maxLength: 40}), fc.boolean())
	.map(([lines, noise, withNoise]) => {
		const text = Buffer.from(lines.join(''));
		return withNoise ? Buffer.concat([text, noise]) : text;
	});
// Where the peer cuts what it writes, and whether it hangs up at the end or keeps the line open.
const cuts = fc.array(fc.nat(), {maxLength: 6});
const hangsUp = fc.constantFrom(true, true, true, false);

describe('qmpExecute against arbitrary peers (property-based)', () => {
	test('any byte stream: a typed QmpError or success, within the timeout, and success only for a greeting and two returns', async () => {
		await fc.assert(fc.asyncProperty(stream, cuts, hangsUp, async (bytes, positions, hangUp) => {
			peer.play(socket => {
				const points = [...new Set(positions.map(cut => cut % (bytes.length + 1))), bytes.length].sort((a, b) => a - b);
				let start = 0;
				for (const point of points) {
					socket.write(bytes.subarray(start, point));
					start = point;
				}

				if (hangUp) {
					socket.end();
				}
			});
			const started = Date.now();
			const outcome = await qmpExecute(peer.socketPath, 'quit', 150).then(() => 'success', (error: unknown) => error);
			expect(Date.now() - started).toBeLessThan(2000);
			const messages = messagesOf(bytes);
			const answered = messages.slice(0, 3).join(' ') === 'greeting return return';
			if (outcome === 'success') {
				expect(answered).toBe(true);
			} else {
				expect(outcome).toBeInstanceOf(QmpError);
				// A clean answer with nothing wrong after it cannot fail.
				expect(answered && messages.every(kind => kind !== 'invalid') && messages.length - 1 <= 16).toBe(false);
			}
		}), {numRuns: 120});
	});
});
