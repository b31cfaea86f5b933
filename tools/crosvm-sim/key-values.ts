import {ValueError} from './failures.js';
import {parseKeyValueUnsigned, type UnsignedBits} from './numbers.js';

/** The type of one key in a key-value grammar. */
export type KeyType =
	| {kind: 'bool'}
	| {kind: 'unsigned'; bits: UnsignedBits}
	| {kind: 'string'; maxLength?: number; tooLong?: string}
	| {kind: 'enum'; variants: readonly string[]; aliases?: Readonly<Record<string, string>>}
	/** A bracketed list (`[256,256]`, `[[0,1],[2]]`), kept as text. */
	| {kind: 'list'};

/** A key-value grammar: crosvm's struct with `deny_unknown_fields` and its serde attributes. */
export interface KeyValueSchema {
	/** Keys in declaration order: the first one may be given without its name. */
	keys: ReadonlyArray<readonly [name: string, type: KeyType]>;
	/** Other spellings accepted for a key (`o_direct` for `direct`). */
	aliases?: Readonly<Record<string, string>>;
	required?: readonly string[];
}

export type KeyValues = Record<string, boolean | number | string>;

/** Splits at commas that are outside brackets and quotes. */
function splitFields(text: string): string[] {
	const fields: string[] = [];
	let depth = 0;
	let quoted = false;
	let start = 0;
	for (let index = 0; index < text.length; index++) {
		const character = text[index];
		if (quoted) {
			if (character === '\\') {
				index++;
			} else if (character === '"') {
				quoted = false;
			}
		} else if (character === '"') {
			quoted = true;
		} else if (character === '[') {
			depth++;
		} else if (character === ']') {
			depth--;
		} else if (character === ',' && depth === 0) {
			fields.push(text.slice(start, index));
			start = index + 1;
		}
	}

	if (quoted || depth !== 0) {
		throw new ValueError(quoted ? 'unterminated string' : 'unterminated list');
	}

	fields.push(text.slice(start));
	return fields;
}

function unquote(text: string): string {
	return text.startsWith('"') && text.endsWith('"') && text.length >= 2 ? text.slice(1, -1).replaceAll(/\\(.)/g, '$1') : text;
}

function quoteList(names: readonly string[]): string {
	return names.map(name => `\`${name}\``).join(', ');
}

function convert(key: string, type: KeyType, value: string | undefined): boolean | number | string {
	switch (type.kind) {
		case 'bool': {
			if (value === undefined || value === 'true') {
				return true;
			}

			if (value === 'false') {
				return false;
			}

			throw new ValueError('expected a boolean');
		}

		case 'unsigned': {
			return parseKeyValueUnsigned(value ?? '', type.bits);
		}

		case 'string': {
			const text = unquote(value ?? '');
			if (type.maxLength !== undefined && text.length > type.maxLength) {
				throw new ValueError(type.tooLong ?? `\`${key}\` is too long`);
			}

			return text;
		}

		case 'enum': {
			const variant = type.aliases?.[value ?? ''] ?? value ?? '';
			if (!type.variants.includes(variant)) {
				throw new ValueError(`unknown variant \`${value ?? ''}\`, expected one of ${quoteList(type.variants)}`);
			}

			return variant;
		}

		case 'list': {
			if (value === undefined || !value.startsWith('[') || !value.endsWith(']')) {
				throw new ValueError('expected a list');
			}

			return value;
		}
	}
}

/**
 * crosvm's `from_key_values`: comma-separated `key=value` fields; unknown keys refused; a boolean
 * key alone means true; numbers decimal or `0x`; the first key may be left out (`1024` is `size=1024`).
 */
export function parseKeyValues(text: string, schema: KeyValueSchema): KeyValues {
	const types = new Map(schema.keys);
	const result: KeyValues = {};
	const fields = text === '' ? [] : splitFields(text);
	for (const [index, field] of fields.entries()) {
		const equals = field.indexOf('=');
		let key = equals === -1 ? field : field.slice(0, equals);
		let value = equals === -1 ? undefined : field.slice(equals + 1);
		if (index === 0 && equals === -1 && schema.keys.length > 0) {
			// serde_keyvalue: a first field without a key is the value of the first key.
			key = schema.keys[0]![0];
			value = field;
		}

		key = schema.aliases?.[key] ?? key;
		const type = types.get(key);
		if (type === undefined) {
			throw new ValueError(`unknown field \`${key}\`, expected one of ${quoteList(schema.keys.map(([name]) => name))}`);
		}

		if (key in result) {
			throw new ValueError(`duplicate field \`${key}\``);
		}

		result[key] = convert(key, type, value);
	}

	for (const key of schema.required ?? []) {
		if (!(key in result)) {
			throw new ValueError(`missing field \`${key}\``);
		}
	}

	return result;
}
