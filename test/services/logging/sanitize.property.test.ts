import {describe, expect, test} from '@jest/globals';
import fc from 'fast-check';
import {sanitizeForLog} from '../../../src/services/logging/sanitize.js';

// The reference model: escape every unsafe character, one by one, with no bound.
// eslint-disable-next-line no-control-regex -- the reference model names the control characters it escapes
const UNSAFE = /[\u0000-\u001F\u007F-\u009F\u2028\u2029\u202A-\u202E\u2066-\u2069]/u;
function escapeAll(text: string): string {
	return [...text].map(character => {
		if (!UNSAFE.test(character)) {
			return character;
		}

		return {'\n': '\\n', '\r': '\\r', '\t': '\\t'}[character] ?? `\\u${character.codePointAt(0)!.toString(16).padStart(4, '0')}`;
	}).join('');
}

const texts = fc.oneof(fc.string({unit: 'binary', maxLength: 300}), fc.string({unit: fc.constantFrom('a', '\n', '\r', '\u001B', '\u2028', '\\', 'u', '🙂', '\uD800'), maxLength: 300}));
const bounds = fc.integer({min: 0, max: 400});

describe('sanitizeForLog (property-based)', () => {
	test('the result holds no unsafe character and fits the bound', () => {
		fc.assert(fc.property(texts, bounds, (text, bound) => {
			const result = sanitizeForLog(text, bound);
			expect(UNSAFE.test(result)).toBe(false);
			expect(result.length).toBeLessThanOrEqual(Math.max(bound, 40));
		}));
	});

	test('it is the escaped text when that fits, otherwise an escaped prefix and the count of the rest', () => {
		fc.assert(fc.property(texts, bounds, (text, bound) => {
			const result = sanitizeForLog(text, bound);
			const escaped = escapeAll(text);
			if (escaped.length <= Math.max(bound, 40)) {
				expect(result).toBe(escaped);
				return;
			}

			const match = /^([^]*)…\[(\d+) more characters\]$/.exec(result);
			expect(match).not.toBeNull();
			const kept = text.length - Number(match![2]);
			expect(match![1]).toBe(escapeAll(text.slice(0, kept)));
		}));
	});

	test('sanitizing twice changes nothing', () => {
		fc.assert(fc.property(texts, bounds, (text, bound) => {
			const once = sanitizeForLog(text, bound);
			expect(sanitizeForLog(once, bound)).toBe(once);
		}));
	});
});
