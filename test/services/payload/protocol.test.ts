import {formatPayloadReport, MAX_PAYLOAD_LINE_BYTES, PayloadLineDecoder} from '../../../src/services/payload/protocol.js';

// The properties docs/payload-protocol.md promises guests.
describe('the VMW1 line protocol as documented', () => {
	test('the documented example decodes to the documented reports', () => {
		const decoder = new PayloadLineDecoder();
		const lines = decoder.push('VMW1 STARTED\r\nVMW1 READY\r\nVMW1 ERROR 3 disk full: /data\r\nVMW1 FINISHED 0\r\n');
		expect(lines).toEqual([
			{ok: true, report: {type: 'started'}},
			{ok: true, report: {type: 'ready'}},
			{ok: true, report: {type: 'error', code: 3, message: 'disk full: /data'}},
			{ok: true, report: {type: 'finished', exitCode: 0}},
		]);
	});

	test('formatted reports are single lines the decoder reads back', () => {
		const reports = [{type: 'started'}, {type: 'finished', exitCode: -1}, {type: 'error', code: 7, message: 'two\nlines'}] as const;
		const text = reports.map(report => formatPayloadReport(report)).join('');
		expect(text).toBe('VMW1 STARTED\nVMW1 FINISHED -1\nVMW1 ERROR 7 two lines\n');
		expect(new PayloadLineDecoder().push(text).map(line => line.ok)).toEqual([true, true, true]);
	});

	test('a line split across chunks, and a last line without a newline', () => {
		const decoder = new PayloadLineDecoder();
		expect(decoder.push('VMW1 REA')).toEqual([]);
		expect(decoder.push('DY\nVMW1 FINI')).toEqual([{ok: true, report: {type: 'ready'}}]);
		expect(decoder.push('SHED 4')).toEqual([]);
		expect(decoder.end()).toEqual([{ok: true, report: {type: 'finished', exitCode: 4}}]);
	});

	test('a line of exactly the limit is kept, with or without CR', () => {
		const message = 'm'.repeat(MAX_PAYLOAD_LINE_BYTES - 'VMW1 ERROR 1 '.length);
		const decoder = new PayloadLineDecoder();
		expect(decoder.push(`VMW1 ERROR 1 ${message}\r\nVMW1 ERROR 1 ${message}\n`)).toEqual([
			{ok: true, report: {type: 'error', code: 1, message}},
			{ok: true, report: {type: 'error', code: 1, message}},
		]);
	});

	test('a longer line is dropped as one malformed line, whole or in pieces', () => {
		const long = `VMW1 ERROR 1 ${'m'.repeat(MAX_PAYLOAD_LINE_BYTES)}`;
		const whole = new PayloadLineDecoder().push(`${long}\nVMW1 READY\n`);
		expect(whole).toEqual([
			{ok: false, line: long.slice(0, 80), problem: `line longer than ${MAX_PAYLOAD_LINE_BYTES} bytes`},
			{ok: true, report: {type: 'ready'}},
		]);

		const decoder = new PayloadLineDecoder();
		const lines = [];
		for (let index = 0; index < long.length; index += 1000) {
			lines.push(...decoder.push(long.slice(index, index + 1000)));
		}

		lines.push(...decoder.push('mmm\nVMW1 READY\n'));
		expect(lines).toEqual(whole);
	});

	test('the limit counts bytes, not characters', () => {
		const message = 'é'.repeat(MAX_PAYLOAD_LINE_BYTES / 2);
		const [line] = new PayloadLineDecoder().push(`VMW1 ERROR 1 ${message}\n`);
		expect(line).toMatchObject({ok: false, problem: `line longer than ${MAX_PAYLOAD_LINE_BYTES} bytes`});
	});

	test('other versions and stray output are told apart', () => {
		expect(new PayloadLineDecoder().push('VMW2 STARTED\n[    0.000000] Linux version\nVMW1 STARTED now\n')).toEqual([
			{ok: false, line: 'VMW2 STARTED', problem: 'unsupported protocol version VMW2'},
			{ok: false, line: '[    0.000000] Linux version', problem: 'not a payload report'},
			{ok: false, line: 'VMW1 STARTED now', problem: 'STARTED takes no arguments'},
		]);
	});
});
