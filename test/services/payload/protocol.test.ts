import {formatPayloadReport, MAX_PAYLOAD_LINE_BYTES, parsePayloadLine, PayloadLineDecoder} from '../../../src/services/payload/protocol.js';

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

describe('parsePayloadLine: every way a line can be wrong', () => {
	test.each([
		['VMW1 STARTED', {type: 'started'}],
		['VMW1 READY', {type: 'ready'}],
		['VMW1 FINISHED 0', {type: 'finished', exitCode: 0}],
		['VMW1 FINISHED -2147483648', {type: 'finished', exitCode: -2_147_483_648}],
		['VMW1 FINISHED 9999999999', {type: 'finished', exitCode: 9_999_999_999}],
		['VMW1 ERROR 3', {type: 'error', code: 3, message: ''}],
		['VMW1 ERROR -1 two  spaces kept ', {type: 'error', code: -1, message: 'two  spaces kept '}],
	])('%j is %j', (line, report) => {
		expect(parsePayloadLine(line)).toEqual({ok: true, report});
	});

	test.each([
		['', 'not a payload report'],
		['VMW', 'not a payload report'],
		['xVMW2 READY', 'not a payload report'],
		['VMW2x READY', 'not a payload report'],
		['vmw1 READY', 'not a payload report'],
		[' VMW1 READY', 'not a payload report'],
		['VMW1\tREADY', 'not a payload report'],
		['VMW2 READY', 'unsupported protocol version VMW2'],
		['VMW12 READY', 'unsupported protocol version VMW12'],
		['VMW0', 'unsupported protocol version VMW0'],
		['VMW1', 'unknown verb (none)'],
		['VMW1 ', 'unknown verb '],
		['VMW1 RESTARTED', 'unknown verb RESTARTED'],
		['VMW1 ready', 'unknown verb ready'],
		['VMW1 READY ', 'READY takes no arguments'],
		['VMW1 STARTED now', 'STARTED takes no arguments'],
		['VMW1 FINISHED', 'FINISHED takes one integer exit code'],
		['VMW1 FINISHED ', 'FINISHED takes one integer exit code'],
		['VMW1 FINISHED 1 2', 'FINISHED takes one integer exit code'],
		['VMW1 FINISHED x1', 'FINISHED takes one integer exit code'],
		['VMW1 FINISHED 1x', 'FINISHED takes one integer exit code'],
		['VMW1 FINISHED --1', 'FINISHED takes one integer exit code'],
		['VMW1 FINISHED +1', 'FINISHED takes one integer exit code'],
		['VMW1 FINISHED 12345678901', 'FINISHED takes one integer exit code'],
		['VMW1 ERROR', 'ERROR takes an integer code and a message'],
		['VMW1 ERROR x message', 'ERROR takes an integer code and a message'],
		['VMW1 ERROR 1e3 message', 'ERROR takes an integer code and a message'],
		['VMW1 ERROR  3 message', 'ERROR takes an integer code and a message'],
	])('%j: %s', (line, problem) => {
		expect(parsePayloadLine(line)).toEqual({ok: false, line, problem});
	});
});

describe('PayloadLineDecoder: line ends and limits', () => {
	test('a CR that arrives before its LF, or at the very end, is still a line ending', () => {
		const decoder = new PayloadLineDecoder();
		expect(decoder.push('VMW1 STARTED\r')).toEqual([]);
		expect(decoder.push('\nVMW1 READY\r')).toEqual([{ok: true, report: {type: 'started'}}]);
		expect(decoder.end()).toEqual([{ok: true, report: {type: 'ready'}}]);
	});

	test('only one CR is stripped, and a lone CR is no line ending', () => {
		expect(new PayloadLineDecoder().push('VMW1 READY\r\r\nVMW1 READY\rVMW1 READY\n').map(line => line.ok || line.problem)).toEqual(['unknown verb READY\r', 'unknown verb READY\rVMW1']);
	});

	test('a line of exactly the limit and its CR, with the LF in the next chunk, is kept', () => {
		const message = 'm'.repeat(MAX_PAYLOAD_LINE_BYTES - 'VMW1 ERROR 1 '.length);
		const decoder = new PayloadLineDecoder();
		expect(decoder.push(`VMW1 ERROR 1 ${message}\r`)).toEqual([]);
		expect(decoder.push('\n')).toEqual([{ok: true, report: {type: 'error', code: 1, message}}]);
	});

	test('a line one byte over the limit is reported when its LF comes, and once more bytes make it certain', () => {
		const line = `VMW1 ERROR 1 ${'m'.repeat(MAX_PAYLOAD_LINE_BYTES - 'VMW1 ERROR 1 '.length + 1)}`;
		const problem = `line longer than ${MAX_PAYLOAD_LINE_BYTES} bytes`;
		const atNewline = new PayloadLineDecoder();
		expect(atNewline.push(line)).toEqual([]);
		expect(atNewline.push('\nVMW1 READY\n')).toEqual([{ok: false, line: line.slice(0, 80), problem}, {ok: true, report: {type: 'ready'}}]);
		const early = new PayloadLineDecoder();
		expect(early.push(line)).toEqual([]);
		expect(early.push('m')).toEqual([{ok: false, line: line.slice(0, 80), problem}]);
		expect(early.push('mmm\nVMW1 READY\n')).toEqual([{ok: true, report: {type: 'ready'}}]);
	});

	test('an over-long last line without a newline is reported once, not again at the end', () => {
		const decoder = new PayloadLineDecoder();
		expect(decoder.push('x'.repeat(MAX_PAYLOAD_LINE_BYTES + 2))).toHaveLength(1);
		expect(decoder.end()).toEqual([]);
	});

	test('after end, the decoder starts afresh', () => {
		const decoder = new PayloadLineDecoder();
		decoder.push('x'.repeat(MAX_PAYLOAD_LINE_BYTES + 2));
		expect(decoder.end()).toEqual([]);
		expect(decoder.push('VMW1 READY\n')).toEqual([{ok: true, report: {type: 'ready'}}]);
		decoder.push('VMW1 STAR');
		expect(decoder.end()).toEqual([{ok: false, line: 'VMW1 STAR', problem: 'unknown verb STAR'}]);
		expect(decoder.end()).toEqual([]);
	});

	test('bytes and text chunks mean the same, and a character split across chunks is whole', () => {
		const bytes = new TextEncoder().encode('VMW1 ERROR 5 é🙂\n');
		const decoder = new PayloadLineDecoder();
		const lines = [];
		for (const byte of bytes) {
			lines.push(...decoder.push(Uint8Array.of(byte)));
		}

		expect(lines).toEqual([{ok: true, report: {type: 'error', code: 5, message: 'é🙂'}}]);
		expect(new PayloadLineDecoder().push('VMW1 ERROR 5 é🙂\n')).toEqual(lines);
	});

	test('a preview of an over-long line shows its first 80 characters, multi-byte ones whole', () => {
		const [line] = new PayloadLineDecoder().push(`${'é'.repeat(MAX_PAYLOAD_LINE_BYTES)}\n`);
		expect(line).toEqual({ok: false, line: 'é'.repeat(80), problem: `line longer than ${MAX_PAYLOAD_LINE_BYTES} bytes`});
	});
});
