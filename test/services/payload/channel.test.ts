import {PassThrough, Readable} from 'node:stream';
import {monitorEventLoopDelay} from 'node:perf_hooks';
import {describe, expect, test} from '@jest/globals';
import {createActor, setup} from 'xstate';
import {PAYLOAD_CHANNEL_LIMITS, payloadChannelReader, type PayloadReportEvent} from '../../../src/services/payload/channel.js';
import {MAX_PAYLOAD_LINE_BYTES} from '../../../src/services/payload/protocol.js';
import {silentLogger} from '../../helpers/vm-fixture.js';

/** Runs the reader under a parent that keeps what it sends, as the VM machine would get it. */
function runReader(stream: Readable, now?: () => number) {
	const logger = silentLogger();
	const reports: PayloadReportEvent[] = [];
	const parent = setup({
		types: {events: {} as PayloadReportEvent},
		actors: {readPayloadChannel: payloadChannelReader},
	}).createMachine({
		invoke: {src: 'readPayloadChannel', input: {stream, logger, now}},
		on: {
			'PAYLOAD.REPORT': {
				actions: ({event}) => {
					reports.push(event);
				},
			},
		},
	});
	const actor = createActor(parent).start();
	return {
		logger,
		reports,
		stop: () => actor.stop(),
		messages: () => logger.lines.filter(line => line.level !== 'debug').map(line => line.message),
		finished: () => logger.lines.some(line => line.message.startsWith('Payload channel ended')),
	};
}

/** Resolves once the stream ended and the reader decoded all of it (it yields between slices). */
async function drained(stream: Readable, reader: {finished: () => boolean}): Promise<void> {
	while (!stream.readableEnded || !reader.finished()) {
		await new Promise(resolve => setTimeout(resolve, 1));
	}
}

/**
 * Runs the reader over `stream` to its end, watching the event loop meanwhile: how often a 1 ms
 * timer got to run, and the longest the loop was blocked (ms).
 */
async function readWatchingTheLoop(stream: Readable) {
	let ticks = 0;
	const ticker = setInterval(() => {
		ticks++;
	}, 1);
	const delay = monitorEventLoopDelay({resolution: 5});
	delay.enable();
	const reader = runReader(stream);
	await drained(stream, reader);
	delay.disable();
	clearInterval(ticker);
	return {reader, ticks, maxDelayMs: delay.max / 1e6};
}

describe('payloadChannelReader', () => {
	test('sends each report as the payload state it moves to, from the guest', async () => {
		const stream = new PassThrough();
		const reader = runReader(stream);
		const {reports, messages} = reader;
		stream.end('VMW1 STARTED\r\nVMW1 READY\nVMW1 ERROR 3 out of disk\n');
		await drained(stream, reader);
		expect(reports.map(({state, initiator, report}) => [state, initiator, report])).toEqual([
			['Started', 'guest', {type: 'started'}],
			['Ready', 'guest', {type: 'ready'}],
			['Finished', 'guest', {type: 'error', code: 3, message: 'out of disk'}],
		]);
		expect(messages()).toEqual([]);
		expect(reader.logger.lines.at(-1)).toMatchObject({level: 'debug', message: 'Payload channel ended after 3 lines'});
	});

	test('no payload channel: nothing to read, nothing logged', () => {
		const logger = silentLogger();
		const parent = setup({actors: {readPayloadChannel: payloadChannelReader}}).createMachine({invoke: {src: 'readPayloadChannel', input: {stream: undefined, logger}}});
		const actor = createActor(parent).start();
		actor.stop();
		expect(logger.lines).toEqual([]);
	});

	test('a stream read as text gives the same reports', async () => {
		const stream = new PassThrough();
		stream.setEncoding('utf8');
		const reader = runReader(stream);
		stream.end('VMW1 ERROR 2 é\n');
		await drained(stream, reader);
		expect(reader.reports.map(event => event.report)).toEqual([{type: 'error', code: 2, message: 'é'}]);
		expect(reader.logger.lines.filter(line => line.level === 'error')).toEqual([]);
	});

	test('a last line without a newline counts at the end of the stream', async () => {
		const stream = new PassThrough();
		const reader = runReader(stream);
		const {reports} = reader;
		stream.write('VMW1 FINI');
		stream.end('SHED 7');
		await drained(stream, reader);
		expect(reports.map(event => event.report)).toEqual([{type: 'finished', exitCode: 7}]);
	});

	test('a malformed line is logged escaped and truncated, never raw', async () => {
		const stream = new PassThrough();
		const reader = runReader(stream);
		const {logger, messages} = reader;
		stream.end(`VMW9 \u001B[2J${'x'.repeat(1000)}\r\nhello\u001B]0;owned\u0007\n`);
		await drained(stream, reader);
		expect(messages()).toHaveLength(2);
		expect(messages()[0]).toMatch(/^Dropped payload channel line "VMW9 \\u001b\[2Jx+…\[\d+ more characters\]": unsupported protocol version VMW9$/);
		expect(messages()[0]!.length).toBeLessThan(PAYLOAD_CHANNEL_LIMITS.malformedLineCharacters + 100);
		expect(messages()[1]).toBe('Dropped payload channel line "hello\\u001b]0;owned\\u0007": not a payload report');
		expect(logger.lines.filter(line => line.level !== 'debug').every(line => line.level === 'warn')).toBe(true);
	});

	test('malformed lines: the first few one by one, then a count per interval and a final count', async () => {
		let clock = 0;
		const stream = new PassThrough();
		const reader = runReader(stream, () => clock);
		const {messages} = reader;
		const {malformedLinesLogged, summaryIntervalMs} = PAYLOAD_CHANNEL_LIMITS;
		stream.write('junk\n'.repeat(malformedLinesLogged + 10));
		await new Promise(resolve => setImmediate(resolve));
		clock += summaryIntervalMs;
		stream.write('junk\n'.repeat(3));
		await new Promise(resolve => setImmediate(resolve));
		stream.end('junk\n'.repeat(4));
		await drained(stream, reader);
		expect(messages()).toEqual([
			...Array.from({length: malformedLinesLogged}, () => 'Dropped payload channel line "junk": not a payload report'),
			'More malformed payload channel lines: from now on counted, not logged one by one',
			// Counted when the next line comes: the ten after the first five, and the first late one.
			`11 more malformed payload channel lines in the last ${summaryIntervalMs / 1000} s`,
			'6 more malformed payload channel lines in the last 1 s',
			`${malformedLinesLogged + 17} malformed payload channel lines in all`,
		]);
	});

	test('repeated reports: every forward one is sent, a few refusable ones, the rest dropped and counted', async () => {
		const stream = new PassThrough();
		const reader = runReader(stream);
		const {reports, messages} = reader;
		stream.end(`VMW1 READY\n${'VMW1 STARTED\nVMW1 READY\n'.repeat(500)}VMW1 FINISHED 0\n`);
		await drained(stream, reader);
		const {refusedReportsSent} = PAYLOAD_CHANNEL_LIMITS;
		expect(reports.map(event => event.state)).toEqual([
			'Ready',
			...Array.from({length: refusedReportsSent / 2}, () => ['Started', 'Ready']).flat(),
			'Finished',
		]);
		expect(messages()).toEqual([
			'Dropped a payload report to Started: the payload is already at Ready or beyond',
			'More payload reports dropped (each could only be refused): from now on counted, not logged one by one',
			`${1000 - refusedReportsSent - 1} more payload reports dropped (each could only be refused) in the last 1 s`,
			`${1000 - refusedReportsSent} payload reports dropped (each could only be refused) in all`,
		]);
	});

	test('an endless line costs one report and no growing buffer; reading resumes at the next line', async () => {
		const chunk = Buffer.alloc(64 * 1024, 'z');
		let left = 20 * 1024 * 1024;
		const stream = new Readable({
			read() {
				if (left > 0) {
					left -= chunk.length;
					this.push(chunk);
				} else {
					this.push('\nVMW1 READY\n');
					this.push(null);
				}
			},
		});
		const before = process.memoryUsage();
		const reader = runReader(stream);
		const {reports, messages} = reader;
		await drained(stream, reader);
		const after = process.memoryUsage();
		expect(messages()).toEqual([`Dropped payload channel line "${'z'.repeat(80)}": line longer than ${MAX_PAYLOAD_LINE_BYTES} bytes`]);
		expect(reports.map(event => event.state)).toEqual(['Ready']);
		// 20 MiB went through; what stays is a few chunks at most.
		expect(after.heapUsed + after.arrayBuffers - before.heapUsed - before.arrayBuffers).toBeLessThan(16 * 1024 * 1024);
	});

	test('a flood of 100,000 junk lines (20 MB): bounded log, the event loop keeps running, reports still arrive', async () => {
		const junk = Buffer.from(`${'\u001B[31m junk '.repeat(20)}\n`);
		const flood = Buffer.concat(Array.from({length: 100_000}, () => junk));
		expect(flood.length).toBeGreaterThan(20_000_000);
		// All of it already buffered in the stream, the worst case for a reader that never yields.
		const stream = new PassThrough({highWaterMark: flood.length + 100});
		stream.end(Buffer.concat([flood, Buffer.from('VMW1 STARTED\n')]));
		const {reader, ticks, maxDelayMs} = await readWatchingTheLoop(stream);
		const {reports, messages} = reader;
		expect(reports.map(event => event.state)).toEqual(['Started']);
		expect(messages().length).toBeLessThanOrEqual(PAYLOAD_CHANNEL_LIMITS.malformedLinesLogged + 4);
		expect(messages().at(-1)).toBe('100000 malformed payload channel lines in all');
		// The timer ran while the flood was read: other work (the VMM's exit) is not starved.
		expect(ticks).toBeGreaterThan(0);
		// Generous: one slice takes a few milliseconds; reading it all in one go takes seconds.
		expect(maxDelayMs).toBeLessThan(1000);
	});

	test('a flood in many small chunks yields to the event loop too', async () => {
		const stream = new PassThrough({highWaterMark: 64 * 1024 * 1024});
		for (let index = 0; index < 200_000; index++) {
			stream.write(`junk ${index}\n`);
		}

		stream.end();
		const {reader, ticks, maxDelayMs} = await readWatchingTheLoop(stream);
		expect(reader.messages().at(-1)).toBe('200000 malformed payload channel lines in all');
		expect(ticks).toBeGreaterThan(0);
		expect(maxDelayMs).toBeLessThan(1000);
	});

	test('stopped in the middle of a flood: nothing more is read or logged, and the stream flows again', async () => {
		const stream = new PassThrough({highWaterMark: 4 * 1024 * 1024});
		stream.write('junk\n'.repeat(500_000));
		const reader = runReader(stream);
		while (!reader.messages().some(message => message.startsWith('More malformed'))) {
			await new Promise(resolve => setImmediate(resolve));
		}

		reader.stop();
		const logged = reader.messages();
		expect(logged.at(-1)).toMatch(/^\d+ malformed payload channel lines in all$/);
		expect(Number(/^\d+/.exec(logged.at(-1)!)![0])).toBeLessThan(500_000);
		await new Promise(resolve => setTimeout(resolve, 20));
		expect(reader.messages()).toEqual(logged);
		expect(stream.isPaused()).toBe(false);
		expect(stream.listenerCount('data')).toBe(0);
		// Its end is no longer the reader's business.
		const linesAtStop = reader.logger.lines.length;
		stream.end('VMW1 READY\n');
		await new Promise(resolve => stream.once('end', resolve));
		await new Promise(resolve => setImmediate(resolve));
		expect(reader.logger.lines).toHaveLength(linesAtStop);
		expect(reader.reports).toEqual([]);
	});

	test('a stream that fails is logged with its message made safe', async () => {
		const stream = new PassThrough();
		const reader = runReader(stream);
		const {messages} = reader;
		stream.destroy(new Error('EIO\nforged'));
		await new Promise(resolve => setImmediate(resolve));
		expect(messages()).toEqual(['Payload channel read failed: EIO\\nforged']);
	});
});
