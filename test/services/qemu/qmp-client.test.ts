import path from 'node:path';
import {afterAll, beforeAll, describe, expect, test} from '@jest/globals';
import {QmpError} from '../../../src/errors.js';
import {MAX_QMP_LINE_BYTES, parseQmpLine, qmpExecute} from '../../../src/services/qemu/qmp-client.js';
import {GREETING, RETURN, startQmpPeer} from './qmp-peer.js';

let peer: Awaited<ReturnType<typeof startQmpPeer>>;

beforeAll(async () => {
	peer = await startQmpPeer();
});

afterAll(async () => {
	await peer.close();
});

describe('parseQmpLine', () => {
	test.each([
		[GREETING, {kind: 'greeting'}],
		['{"return": {}}', {kind: 'return', value: {}}],
		['{"return": null}', {kind: 'return', value: null}],
		['{"return": {"actual": 134217728}}', {kind: 'return', value: {actual: 134_217_728}}],
		['{"return": [1, "a"]}', {kind: 'return', value: [1, 'a']}],
		['{"error": {"class": "GenericError", "desc": "nope"}}', {kind: 'error', errorClass: 'GenericError', desc: 'nope'}],
		['{"event": "POWERDOWN", "timestamp": {"seconds": 1, "microseconds": 2}}', {kind: 'event'}],
	])('%j is a %j', (line, message) => {
		expect(parseQmpLine(line)).toEqual(message);
	});

	test.each([
		['{"return"', 'QMP sent a line that is not JSON: {"return"'],
		['[1]', 'QMP sent JSON that is not an object: [1]'],
		['null', 'QMP sent JSON that is not an object: null'],
		['"QMP"', 'QMP sent JSON that is not an object: "QMP"'],
		['{"QMP": 1}', 'QMP sent a message of no known shape: {"QMP": 1}'],
		['{"QMP": null}', 'QMP sent a message of no known shape: {"QMP": null}'],
		['{"QMP": []}', 'QMP sent a message of no known shape: {"QMP": []}'],
		['{"event": 3}', 'QMP sent a message of no known shape: {"event": 3}'],
		['{"error": "x"}', 'QMP sent a message of no known shape: {"error": "x"}'],
		['{"error": {"class": "A"}}', 'QMP sent a message of no known shape: {"error": {"class": "A"}}'],
		['{"error": {"desc": "A"}}', 'QMP sent a message of no known shape: {"error": {"desc": "A"}}'],
		['{"error": {"class": 1, "desc": "A"}}', 'QMP sent a message of no known shape: {"error": {"class": 1, "desc": "A"}}'],
		['{"return": {}, "error": 1}', 'QMP sent a message of no known shape: {"return": {}, "error": 1}'],
		['{}', 'QMP sent a message of no known shape: {}'],
		['{"x": "\\u001b[2J"}\u001B', 'QMP sent a line that is not JSON: {"x": "\\u001b[2J"}\\u001b'],
	])('%j is refused: %s', (line, message) => {
		expect(() => parseQmpLine(line)).toThrow(new QmpError(message));
	});
});

describe('qmpExecute against a fake peer', () => {
	test('greeting, capabilities, command: resolves, and sends exactly the two commands', async () => {
		let received = () => '';
		peer.play((socket, read) => {
			received = read;
			socket.write(GREETING);
			socket.on('data', () => {
				// An event first, as QEMU may send one at any time.
				socket.write(`{"event": "X", "data": {}}\n\n${RETURN}`);
			});
		});
		await expect(qmpExecute(peer.socketPath, 'system_powerdown', 2000)).resolves.toEqual({});
		expect(received()).toBe('{"execute":"qmp_capabilities"}\n{"execute":"system_powerdown"}\n');
	});

	test('arguments are sent as the command\'s arguments, and its return value is what resolves', async () => {
		let received = () => '';
		peer.play((socket, read) => {
			received = read;
			socket.write(GREETING);
			socket.on('data', chunk => {
				socket.write(chunk.toString().includes('qmp_capabilities') ? RETURN : '{"event": "BALLOON_CHANGE", "data": {"actual": 1}}\n{"return": {"actual": 67108864}}\n');
			});
		});
		await expect(qmpExecute(peer.socketPath, 'balloon', 2000, {value: 67_108_864})).resolves.toEqual({actual: 67_108_864});
		expect(received()).toBe('{"execute":"qmp_capabilities"}\n{"execute":"balloon","arguments":{"value":67108864}}\n');
	});

	test('the return value of qmp_capabilities is not taken for the command\'s', async () => {
		peer.play(socket => {
			socket.write(GREETING);
			socket.on('data', chunk => {
				socket.write(chunk.toString().includes('qmp_capabilities') ? '{"return": {"actual": 1}}\n' : '{"return": 7}\n');
			});
		});
		await expect(qmpExecute(peer.socketPath, 'query-balloon', 2000)).resolves.toBe(7);
	});

	test('an error reply is a QmpError naming the command, class and description, made safe', async () => {
		peer.play(socket => {
			socket.write(GREETING);
			socket.on('data', chunk => {
				socket.write(chunk.toString().includes('qmp_capabilities') ? RETURN : '{"error": {"class": "GenericError", "desc": "no\\u001b[2J"}}\n');
			});
		});
		await expect(qmpExecute(peer.socketPath, 'quit', 2000)).rejects.toThrow(new QmpError('QMP quit failed: GenericError: no\\u001b[2J'));
	});

	test('a reply before the greeting is no greeting', async () => {
		peer.play(socket => {
			socket.write(RETURN);
		});
		await expect(qmpExecute(peer.socketPath, 'quit', 2000)).rejects.toThrow(new QmpError('QMP sent no greeting'));
	});

	test('a second greeting instead of a reply is refused', async () => {
		peer.play(socket => {
			socket.write(GREETING);
			socket.on('data', () => {
				socket.write(GREETING);
			});
		});
		await expect(qmpExecute(peer.socketPath, 'quit', 2000)).rejects.toThrow(new QmpError('QMP answered qmp_capabilities with a second greeting'));
	});

	test('a peer that sends a line longer than the bound is cut off as soon as it passes it', async () => {
		let written = 0;
		let peerClosed!: Promise<void>;
		peer.play(socket => {
			peerClosed = new Promise(resolve => socket.once('close', () => resolve()));
			const chunk = Buffer.alloc(64 * 1024, 'a');
			const pump = () => {
				// 22 MiB without a newline, unless the client hangs up first.
				while (!socket.destroyed && written < 22 * 1024 * 1024) {
					written += chunk.length;
					if (!socket.write(chunk)) {
						socket.once('drain', pump);
						return;
					}
				}
			};

			pump();
		});
		const before = process.memoryUsage();
		await expect(qmpExecute(peer.socketPath, 'quit', 10_000)).rejects.toThrow(new QmpError(`QMP sent a line longer than ${MAX_QMP_LINE_BYTES} bytes`));
		await peerClosed;
		const after = process.memoryUsage();
		expect(written).toBeLessThan(22 * 1024 * 1024);
		expect(after.heapUsed + after.arrayBuffers - before.heapUsed - before.arrayBuffers).toBeLessThan(32 * 1024 * 1024);
	});

	test('a line of exactly the bound is read', async () => {
		peer.play(socket => {
			const padding = MAX_QMP_LINE_BYTES - '{"QMP": {"p": ""}}'.length;
			socket.write(`{"QMP": {"p": "${'p'.repeat(padding)}"}}\n`);
			socket.on('data', () => {
				socket.write(RETURN);
			});
		});
		await expect(qmpExecute(peer.socketPath, 'quit', 5000)).resolves.toEqual({});
	});

	test('a peer that floods replies nobody asked for is cut off', async () => {
		peer.play(socket => {
			socket.write(GREETING + RETURN.repeat(100));
		});
		await expect(qmpExecute(peer.socketPath, 'quit', 2000)).rejects.toThrow(new QmpError('QMP sent more than 16 replies nobody asked for'));
	});

	test('a peer that never answers costs the timeout, no more', async () => {
		peer.play(() => undefined);
		const started = Date.now();
		await expect(qmpExecute(peer.socketPath, 'system_powerdown', 100)).rejects.toThrow(new QmpError('QMP system_powerdown got no answer within 100 ms'));
		expect(Date.now() - started).toBeLessThan(2000);
	});

	test('a peer that hangs up is a closed connection', async () => {
		peer.play(socket => {
			socket.end(GREETING);
		});
		await expect(qmpExecute(peer.socketPath, 'quit', 2000)).rejects.toThrow(new QmpError('QMP closed the connection'));
	});

	test('no socket at all: retried until the timeout, then a connection error', async () => {
		const started = Date.now();
		await expect(qmpExecute(`${peer.socketPath}.missing`, 'quit', 150)).rejects.toThrow(QmpError);
		expect(Date.now() - started).toBeLessThan(2000);
	});
});

describe('qmpExecute while QEMU is still starting', () => {
	test('a socket that appears late is connected to once it is there', async () => {
		const socketPath = path.join(path.dirname(peer.socketPath), 'late.sock');
		const executing = qmpExecute(socketPath, 'quit', 5000);
		await new Promise(resolve => setTimeout(resolve, 120));
		const reborn = await startQmpPeer({socketPath});
		reborn.play(socket => {
			socket.write(GREETING);
			socket.on('data', () => {
				socket.write(RETURN);
			});
		});
		try {
			await expect(executing).resolves.toEqual({});
			expect(reborn.connections()).toBe(1);
		} finally {
			await reborn.close();
		}
	});

	test('no socket until the deadline: the error names the last reason', async () => {
		const socketPath = `${peer.socketPath}.missing`;
		const error: unknown = await qmpExecute(socketPath, 'quit', 120).catch((error_: unknown) => error_);
		expect(error).toBeInstanceOf(QmpError);
		expect((error as QmpError).message).toBe(`cannot connect to QMP at ${socketPath}: ENOENT`);
	});

	test('no socket until the deadline, and the loop busy past it: the error still names the last reason', async () => {
		const socketPath = `${peer.socketPath}.missing`;
		const failed = qmpExecute(socketPath, 'quit', 120).catch((error_: unknown) => error_);
		// A failed attempt or two, then the loop held past the deadline: the retry and the timeout
		// are both overdue when it runs again, and the timeout comes while an attempt is on its way.
		await new Promise(resolve => {
			setTimeout(resolve, 60);
		});
		const until = Date.now() + 250;
		while (Date.now() < until) {
			// Busy, as a loaded host's loop is.
		}

		const error = await failed;
		expect(error).toBeInstanceOf(QmpError);
		expect((error as QmpError).message).toBe(`cannot connect to QMP at ${socketPath}: ENOENT`);
	});

	test('a request abandoned meanwhile (its VM died) stops retrying at once, long before its timeout', async () => {
		const socketPath = `${peer.socketPath}.gone`;
		const cancel = new AbortController();
		const started = Date.now();
		const executing = qmpExecute(socketPath, 'system_powerdown', 10_000, undefined, cancel.signal).catch((error_: unknown) => error_);
		await new Promise(resolve => setTimeout(resolve, 50));
		cancel.abort();
		const error = await executing;
		expect(error).toBeInstanceOf(QmpError);
		expect((error as QmpError).message).toBe('QMP system_powerdown abandoned: the request was cancelled');
		// Generous: the point is that it does not wait for the 10 s timeout.
		expect(Date.now() - started).toBeLessThan(5000);
	});

	test('a request whose signal aborted before it began never connects', async () => {
		const cancel = new AbortController();
		cancel.abort();
		await expect(qmpExecute(peer.socketPath, 'quit', 5000, undefined, cancel.signal)).rejects.toThrow('QMP quit abandoned: the request was cancelled');
	});
});
