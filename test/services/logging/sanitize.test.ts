import {describe, expect, test} from '@jest/globals';
import {MAX_LOG_TEXT_LENGTH, MIN_LOG_TEXT_LENGTH, sanitizeForLog} from '../../../src/services/logging/sanitize.js';

describe('sanitizeForLog', () => {
	test('plain text, backslashes and non-ASCII letters come back unchanged', () => {
		expect(sanitizeForLog('disk full: C:\\data é 日本 🙂')).toBe('disk full: C:\\data é 日本 🙂');
	});

	test('a newline and an escape sequence cannot forge a log line', () => {
		const forged = 'oops\n2026-01-01T00:00:00Z info [vm 3] VM died: SHUTDOWN\u001B[2K\r';
		expect(sanitizeForLog(forged)).toBe('oops\\n2026-01-01T00:00:00Z info [vm 3] VM died: SHUTDOWN\\u001b[2K\\r');
	});

	test.each([
		['\t', '\\t'],
		['\u0000', '\\u0000'],
		['\u001F', '\\u001f'],
		['\u007F', '\\u007f'],
		['\u009B', '\\u009b'],
		['\u2028', '\\u2028'],
		['\u2029', '\\u2029'],
		['\u202E', '\\u202e'],
		['\u2067', '\\u2067'],
	])('%j is escaped as %s', (character, escape) => {
		expect(sanitizeForLog(`a${character}b`)).toBe(`a${escape}b`);
	});

	test.each(['\u0020', '\u00A0', '\u2027', '\u202F', '\u2065', '\u206A', '~'])('%j is kept', character => {
		expect(sanitizeForLog(`a${character}b`)).toBe(`a${character}b`);
	});

	test('text of exactly the bound is kept whole', () => {
		const text = 'x'.repeat(100);
		expect(sanitizeForLog(text, 100)).toBe(text);
	});

	test('longer text is cut with a marker that counts what was cut, within the bound', () => {
		const result = sanitizeForLog('x'.repeat(101), 100);
		expect(result).toBe(`${'x'.repeat(100 - '…[101 more characters]'.length)}…[${101 - (100 - '…[101 more characters]'.length)} more characters]`);
		expect(result.length).toBeLessThanOrEqual(100);
	});

	test('a text whose escapes overflow the bound is cut between escapes, never inside one', () => {
		const result = sanitizeForLog('\u001B'.repeat(60), 60);
		// Six characters per escape: three fit before a marker of 22.
		expect(result).toBe(`${'\\u001b'.repeat(6)}…[54 more characters]`);
	});

	test('a surrogate pair is never split', () => {
		const result = sanitizeForLog(`${'a'.repeat(17)}${'🙂'.repeat(20)}`, 40);
		expect(result).toBe(`${'a'.repeat(17)}🙂…[38 more characters]`);
	});

	test('the default bound, and a bound below the minimum is raised to it', () => {
		const cut = sanitizeForLog('y'.repeat(MAX_LOG_TEXT_LENGTH + 1));
		// The marker is sized for the whole text's count ("…[8193 more characters]", 23 characters).
		expect(cut.length).toBe(MAX_LOG_TEXT_LENGTH - 2);
		expect(cut.endsWith(`y…[${MAX_LOG_TEXT_LENGTH + 1 - (MAX_LOG_TEXT_LENGTH - 23)} more characters]`)).toBe(true);
		expect(sanitizeForLog('y'.repeat(MAX_LOG_TEXT_LENGTH)).length).toBe(MAX_LOG_TEXT_LENGTH);
		expect(sanitizeForLog('y'.repeat(100), 1)).toBe(`${'y'.repeat(MIN_LOG_TEXT_LENGTH - '…[100 more characters]'.length)}…[${100 - MIN_LOG_TEXT_LENGTH + '…[100 more characters]'.length} more characters]`);
	});

	test('a huge text is cut to the bound, and the marker counts all the rest', () => {
		const result = sanitizeForLog('\n'.repeat(50_000_000), 200);
		const kept = (200 - '…[50000000 more characters]'.length) >> 1;
		expect(result).toBe(`${'\\n'.repeat(kept)}…[${50_000_000 - kept} more characters]`);
	});
});
