import {readdirSync, readFileSync} from 'node:fs';
import {join, resolve} from 'node:path';
import {GuestScriptError, parseGuestScript} from '../../tools/crosvm-sim/guest-script.js';
import {makeScratch, runSim} from '../helpers/sim-process.js';

const HEADER = '#!crosvm-sim-guest';

function script(...lines: string[]): string {
	return [HEADER, ...lines].join('\n');
}

test('directives in order, comments and blank lines skipped, TEXT kept as written', () => {
	const parsed = parseGuestScript(script(
		'# a comment',
		'',
		'console  two spaces and # not a comment',
		'kmsg k',
		'log l',
		'payload started',
		'payload ready',
		'payload finished -1',
		'payload error 7 disk full',
		'fail REASON|context with | bars',
		'fail-flood 10',
		'sleep 5',
		'ignore-sigterm',
		'ignore-stop',
		'spawn-holder 100',
		'  crash  ',
	));
	expect(parsed).toEqual({
		directives: [
			{kind: 'write', output: 'console', text: ' two spaces and # not a comment'},
			{kind: 'write', output: 'kmsg', text: 'k'},
			{kind: 'write', output: 'log', text: 'l'},
			{kind: 'payload', report: {type: 'started'}},
			{kind: 'payload', report: {type: 'ready'}},
			{kind: 'payload', report: {type: 'finished', exitCode: -1}},
			{kind: 'payload', report: {type: 'error', code: 7, message: 'disk full'}},
			{kind: 'fail', text: 'REASON|context with | bars'},
			{kind: 'fail-flood', bytes: 10},
			{kind: 'sleep', ms: 5},
			{kind: 'ignore-sigterm'},
			{kind: 'ignore-stop'},
			{kind: 'spawn-holder', ms: 100},
		],
		final: {kind: 'crash'},
	});
});

test.each([
	['signal KILL', {kind: 'signal', signal: 'SIGKILL'}],
	['signal SIGSEGV', {kind: 'signal', signal: 'SIGSEGV'}],
	['exit 255', {kind: 'exit', code: 255}],
	['hang', {kind: 'hang'}],
	['abort', {kind: 'abort'}],
	['watchdog', {kind: 'watchdog'}],
])('final action %s', (line, final) => {
	expect(parseGuestScript(script(line)).final).toEqual(final);
});

test('CRLF line endings are accepted', () => {
	expect(parseGuestScript(`${HEADER}\r\nconsole hi\r\nreboot\r\n`)).toEqual({directives: [{kind: 'write', output: 'console', text: 'hi'}], final: {kind: 'reboot'}});
});

const malformed: Array<[string, string, number, string]> = [
	['no header', 'console hi\npoweroff\n', 1, 'not a guest script'],
	['a header with trailing text', `${HEADER} v2\npoweroff\n`, 1, 'not a guest script'],
	['an unknown directive', script('console hi', 'reboat'), 3, 'unknown directive "reboat"'],
	['a directive after the final action', script('poweroff', 'console late'), 3, 'nothing may follow the final action on line 2'],
	['two final actions', script('reboot', '# comment', 'crash'), 4, 'nothing may follow the final action on line 2'],
	['sleep without a number', script('sleep'), 2, 'sleep takes a whole number'],
	['a negative sleep', script('sleep -5'), 2, 'sleep takes a whole number'],
	['a fractional sleep', script('sleep 1.5'), 2, 'sleep takes a whole number'],
	['fail-flood of words', script('fail-flood lots'), 2, 'fail-flood takes a whole number'],
	['exit above 255', script('exit 256'), 2, 'exit takes a whole number from 0 to 255'],
	['an unknown signal', script('signal SIGFOO'), 2, 'signal takes one of'],
	['SIGPIPE, which Node ignores', script('signal SIGPIPE'), 2, 'signal takes one of'],
	['an unknown payload state', script('payload booted'), 2, 'payload takes started, ready'],
	['payload finished without a code', script('payload finished'), 2, 'payload finished takes an integer code'],
	['payload finished with two codes', script('payload finished 1 2'), 2, 'payload finished takes one exit code'],
	['payload error with a word for a code', script('payload error oops broken'), 2, 'payload error takes an integer code'],
	['payload started with extra words', script('payload started now'), 2, 'payload started takes nothing after it'],
	['poweroff with an argument', script('poweroff now'), 2, 'poweroff takes nothing after it'],
	['ignore-stop with an argument', script('ignore-stop 5'), 2, 'ignore-stop takes nothing after it'],
];

test.each(malformed)('malformed: %s', (_name, text, line, message) => {
	let error: unknown;
	try {
		parseGuestScript(text);
	} catch (caught) {
		error = caught;
	}

	expect(error).toBeInstanceOf(GuestScriptError);
	expect((error as GuestScriptError).line).toBe(line);
	expect((error as GuestScriptError).message).toContain(`line ${line}: ${message}`);
});

describe('through the binary', () => {
	const scratch = makeScratch();

	afterAll(scratch.remove);

	test.each(malformed.slice(0, 8))('%s fails the start with exit 1, naming the file and line', async (name, text, line, message) => {
		const path = scratch.file(name.replaceAll(' ', '-'), text);
		const result = await runSim(['--extended-status', 'run', '--serial', 'type=stdout', path]);
		expect(result.exitCode).toBe(1);
		expect(result.stderr).toContain(`exiting with error 1: failed to load kernel image ${path}: invalid guest script: line ${line}: ${message}`);
		// Nothing of the guest ran.
		expect(result.stdout).toBe('');
	});

	test('a malformed bootloader names the bios', async () => {
		const path = scratch.file('bad-bios', script('jump'));
		const result = await runSim(['run', '--bios', path]);
		expect(result.exitCode).toBe(1);
		expect(result.stderr).toContain(`failed to load bios ${path}: invalid guest script: line 2: unknown directive "jump"`);
	});
});

test('every example guest parses', () => {
	const directory = resolve('examples/guests');
	const names = readdirSync(directory).filter(name => name.endsWith('.guest'));
	expect(names.length).toBeGreaterThanOrEqual(13);
	for (const name of names) {
		expect(() => parseGuestScript(readFileSync(join(directory, name), 'utf8'))).not.toThrow();
	}
});
