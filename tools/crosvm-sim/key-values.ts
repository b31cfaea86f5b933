import {invalidValue, ValueError} from './failures.js';
import type {UnsignedBits} from './numbers.js';

/**
 * crosvm's key-value grammar (`serde_keyvalue`'s `key_values.rs`), in the two versions the
 * simulator plays: `2022` is the hand-written deserializer of google/crosvm at efdcf90a4
 * (2022-06-13), `current` the nom-based one at f1e797a68 (2026-08-21). What changed between them:
 * lists (`[1,2]`) and nested structs arrived, an unquoted string also stops at `[` and `]`, a
 * boolean given with `=` needs `true` or `false` (2022 also took `ro=`), a number may no longer
 * start with `+`, and error texts.
 */
export type KeyValueGrammar = '2022' | 'current';

/** The type of one key, as serde sees the Rust field. */
export type KeyType =
	| {kind: 'bool'}
	| {kind: 'unsigned'; bits: UnsignedBits}
	/** A string or path; `check` throws `ValueError` for a custom deserializer's refusal. */
	| {kind: 'string'; check?: (text: string) => void}
	| {kind: 'enum'; variants: readonly string[]; aliases?: Readonly<Record<string, string>>}
	/** A bracketed sequence (`current` only); `length` for a Rust array such as `[u16; 3]`. */
	| {kind: 'seq'; element: KeyType; length?: number}
	/** A bracketed struct (`current` only): `sve=[auto=true]`. */
	| {kind: 'struct'; schema: KeyValueSchema}
	/** arch's `CpuSet`: a sequence of CPU numbers and `a-b` ranges (`current` only). */
	| {kind: 'cpuset'};

/** A struct with `deny_unknown_fields`: its keys in declaration order, aliases, required keys. */
export interface KeyValueSchema {
	keys: ReadonlyArray<readonly [name: string, type: KeyType]>;
	/** Other spellings serde accepts (`#[serde(alias)]`): `o_direct` for `direct`. */
	aliases?: Readonly<Record<string, string>>;
	/** Keys without `#[serde(default)]`. */
	required?: readonly string[];
}

export type KeyValue = boolean | number | string | KeyValue[] | KeyValues;

export interface KeyValues {
	[key: string]: KeyValue;
}

/** serde's list of expected names: "`a`", "`a` or `b`", "one of `a`, `b`, `c`". */
export function oneOf(names: readonly string[]): string {
	const quoted = names.map(name => `\`${name}\``);
	if (quoted.length <= 1) {
		return quoted[0] ?? 'nothing';
	}

	return quoted.length === 2 ? `${quoted[0]} or ${quoted[1]}` : `one of ${quoted.join(', ')}`;
}

/** The names serde's derive puts in `FIELDS`: every key and its aliases. */
function fieldNames(schema: KeyValueSchema): string[] {
	return [...schema.keys.map(([name]) => name), ...Object.keys(schema.aliases ?? {})];
}

const IDENTIFIER = /^[A-Za-z0-9_][A-Za-z0-9_-]*/;

/** `current`'s number: a sign, a lower-case radix prefix, ASCII letters and digits. */
const NUMBER = /^-?(?:0x|0o|0b)?[A-Za-z0-9]+/;

const ERROR_TEXTS = {
	'2022': {number: 'expected a number or number contains invalid digits', overflow: 'provided number does not fit in the destination type'},
	current: {number: 'invalid characters for number or number does not fit into its destination type', overflow: 'invalid characters for number or number does not fit into its destination type'},
};

/** One pass over a value, as crosvm's `KeyValueDeserializer`. */
class Deserializer {
	private position = 0;
	private nextIdentifier: string | undefined;
	private hasEqual = false;
	private topStructParsed = false;

	constructor(private readonly input: string, private readonly grammar: KeyValueGrammar) {}

	parse(schema: KeyValueSchema): KeyValues {
		const values = this.struct(schema);
		if (this.position < this.input.length) {
			throw this.error('remaining characters in input');
		}

		return values;
	}

	private get rest(): string {
		return this.input.slice(this.position);
	}

	private peek(): string | undefined {
		return this.input[this.position];
	}

	private error(kind: string): ValueError {
		return new ValueError(`${kind} at position ${this.position}`);
	}

	private isSeparator(character: string | undefined): boolean {
		return character === undefined || character === ',' || (this.grammar === 'current' && character === ']');
	}

	/** 2022's `peek_identifier` refuses a character that is not `,` or `=` after a name; `current` stops there. */
	private peekIdentifier(): string | undefined {
		if (this.grammar === 'current') {
			return IDENTIFIER.exec(this.rest)?.[0];
		}

		const name = IDENTIFIER.exec(this.rest)?.[0];
		const after = this.input[this.position + (name?.length ?? 0)];
		return name !== undefined && (after === undefined || after === ',' || after === '=') ? name : undefined;
	}

	private identifier(): string {
		const name = this.peekIdentifier();
		if (name === undefined) {
			throw this.error(this.grammar === '2022' && this.peek() === undefined ? 'unexpected end of input' : 'expected an identifier');
		}

		this.position += name.length;
		return name;
	}

	private struct(schema: KeyValueSchema): KeyValues {
		const nested = this.topStructParsed;
		this.topStructParsed = true;
		if (nested) {
			if (this.peek() !== '[') {
				// serde_keyvalue visits an empty map: fine when every key has a default.
				if ((schema.required ?? []).length > 0) {
					throw this.error('expected \'[\'');
				}

				return {};
			}

			this.position++;
		}

		// A first field given without its key (`--serial stdout`, `--block /x/a=b`) is the first
		// key's value, unless it is a key name itself (`--serial console` is `console=true`).
		const first = this.peekIdentifier();
		const names = fieldNames(schema);
		const keyed = first !== undefined && (this.input[this.position + first.length] === '=' || names.includes(first));
		this.nextIdentifier = keyed ? undefined : schema.keys[0]?.[0];
		const values = this.fields(schema, names);
		if (nested) {
			if (this.peek() !== ']') {
				throw this.error('expected \']\'');
			}

			this.position++;
		}

		return values;
	}

	private fields(schema: KeyValueSchema, names: readonly string[]): KeyValues {
		const types = new Map(schema.keys);
		const values: KeyValues = {};
		while (this.peek() !== undefined && !(this.grammar === 'current' && this.peek() === ']')) {
			const written = this.key();
			const key = schema.aliases?.[written] ?? written;
			const type = types.get(key);
			if (type === undefined) {
				throw new ValueError(`unknown field \`${written}\`, expected ${oneOf(names)}`);
			}

			if (key in values) {
				throw new ValueError(`duplicate field \`${key}\``);
			}

			values[key] = this.value(type);
			this.separator();
		}

		const missing = (schema.required ?? []).find(key => !(key in values));
		if (missing !== undefined) {
			throw new ValueError(`missing field \`${missing}\``);
		}

		return values;
	}

	private key(): string {
		this.hasEqual = false;
		const implicit = this.nextIdentifier;
		this.nextIdentifier = undefined;
		if (implicit !== undefined) {
			this.hasEqual = true;
			return implicit;
		}

		const name = this.identifier();
		if (this.peek() === '=') {
			this.position++;
			this.hasEqual = true;
		} else if (!this.isSeparator(this.peek())) {
			throw this.error('expected \'=\'');
		}

		return name;
	}

	private separator(): void {
		const next = this.peek();
		if (next === ',') {
			this.position++;
		} else if (!this.isSeparator(next)) {
			throw this.error('expected \',\'');
		}
	}

	private value(type: KeyType): KeyValue {
		switch (type.kind) {
			case 'bool': {
				return this.boolean();
			}

			case 'unsigned': {
				return this.unsigned(type.bits);
			}

			case 'string': {
				const text = this.string();
				type.check?.(text);
				return text;
			}

			case 'enum': {
				const name = this.identifier();
				const variant = type.aliases?.[name] ?? name;
				if (!type.variants.includes(variant)) {
					throw new ValueError(`unknown variant \`${name}\`, expected ${oneOf([...type.variants, ...Object.keys(type.aliases ?? {})])}`);
				}

				return variant;
			}

			case 'seq':
			case 'cpuset': {
				return this.sequence(type);
			}

			case 'struct': {
				return this.struct(type.schema);
			}
		}
	}

	private boolean(): boolean {
		if (this.grammar === '2022') {
			const text = /^[^,]*/.exec(this.rest)![0];
			if (text !== '' && text !== 'true' && text !== 'false') {
				throw this.error('expected a boolean');
			}

			this.position += text.length;
			return text !== 'false';
		}

		if (!this.hasEqual) {
			return true;
		}

		const word = /^(?:true|false)/.exec(this.rest)?.[0];
		if (word === undefined) {
			throw this.error('expected a boolean');
		}

		this.position += word.length;
		return word === 'true';
	}

	/** Rust's `from_str_radix` after serde_keyvalue picked the radix from a lower-case prefix. */
	private unsigned(bits: UnsignedBits): number {
		const texts = ERROR_TEXTS[this.grammar];
		let literal: string;
		if (this.grammar === '2022') {
			literal = /^[^,]*/.exec(this.rest)![0];
			if (literal === '') {
				throw this.error('unexpected end of input');
			}
		} else {
			const match = NUMBER.exec(this.rest);
			if (match === null || !this.isSeparator(this.input[this.position + match[0].length])) {
				throw this.error(texts.number);
			}

			literal = match[0];
		}

		const value = radixValue(literal);
		if (value === undefined) {
			throw this.error(texts.number);
		}

		if (value >= 1n << BigInt(bits)) {
			throw this.error(texts.overflow);
		}

		this.position += literal.length;
		return Number(value);
	}

	private string(): string {
		return this.grammar === '2022' ? this.string2022() : this.stringCurrent();
	}

	private string2022(): string {
		const quote = this.peek();
		if (quote === '"' || quote === '\'') {
			let text = '';
			for (let index = this.position + 1; index < this.input.length; index++) {
				const character = this.input[index]!;
				if (character === '\\' && index + 1 < this.input.length) {
					text += this.input[++index];
				} else if (character === quote) {
					this.position = index + 1;
					return text;
				} else {
					text += character;
				}
			}

			throw this.error('non-terminated string');
		}

		const text = /^[^,"']*/.exec(this.rest)![0];
		if (text === '') {
			throw this.error('expected a string');
		}

		this.position += text.length;
		if (this.peek() === '"' || this.peek() === '\'') {
			throw this.error('" and \' can only be used in quoted strings');
		}

		return text;
	}

	private stringCurrent(): string {
		// Double quotes know two escapes (\" and \\); single quotes none; unquoted text stops at , " ' [ ].
		const match = /^"((?:[^"\\]|\\["\\])*)"/.exec(this.rest) ?? /^'([^']*)'/.exec(this.rest) ?? /^([^,"'[\]]+)/.exec(this.rest);
		if (match === null) {
			throw this.error('expected a string');
		}

		this.position += match[0].length;
		if (!this.isSeparator(this.peek())) {
			throw this.error('" and \' can only be used in quoted strings');
		}

		return match[0].startsWith('"') ? match[1]!.replaceAll(/\\(["\\])/g, '$1') : match[1]!;
	}

	private sequence(type: Extract<KeyType, {kind: 'seq' | 'cpuset'}>): KeyValue[] {
		if (this.grammar === '2022') {
			throw new ValueError('sequences are not supported');
		}

		if (this.peek() !== '[') {
			throw this.error('expected \'[\'');
		}

		this.position++;
		const elements: KeyValue[] = [];
		while (this.peek() !== ']') {
			if (type.kind === 'seq' && type.length !== undefined && elements.length === type.length) {
				break;
			}

			if (this.peek() === undefined) {
				throw this.error('expected \']\'');
			}

			elements.push(type.kind === 'seq' ? this.value(type.element) : this.cpus());
			this.separator();
		}

		if (type.kind === 'seq' && type.length !== undefined && elements.length < type.length) {
			throw new ValueError(`invalid length ${elements.length}, expected an array of length ${type.length}`);
		}

		if (this.peek() !== ']') {
			throw this.error('expected \']\'');
		}

		this.position++;
		return elements;
	}

	/**
	 * One `CpuSet` element: serde's untagged `Single(usize)` or `Range(&str)` (arch/src/lib.rs),
	 * told apart by `deserialize_any`: a number, a boolean or else a string.
	 */
	private cpus(): string {
		const text = /^[^,"'[\]]*/.exec(this.rest)![0];
		const number = NUMBER.exec(text)?.[0] === text ? radixValue(text.replace(/^-/, '')) : undefined;
		if (number === undefined ? text === '' || text === 'true' || text === 'false' : text.startsWith('-') || number >= 1n << 64n) {
			throw this.error('data did not match any variant of untagged enum CpuSetValue');
		}

		if (number === undefined) {
			checkCpuRange(text, 'current');
		}

		this.position += text.length;
		return text;
	}
}

/**
 * Rust's `from_str_radix` for an unsigned type after serde_keyvalue chose the radix from a
 * lower-case prefix (`0x`, `0o`, `0b`); a leading `+` is Rust's and accepted.
 */
function radixValue(literal: string): bigint | undefined {
	const radix = {'0x': 16, '0o': 8, '0b': 2}[literal.slice(0, 2)] ?? 10;
	const digits = (radix === 10 ? literal : literal.slice(2)).replace(/^\+/, '');
	const valid = {16: /^[\da-f]+$/i, 8: /^[0-7]+$/, 2: /^[01]+$/, 10: /^\d+$/}[radix]!;
	return valid.test(digits) ? BigInt(radix === 10 ? digits : `${literal.slice(0, 2)}${digits}`) : undefined;
}

function rustUsize(text: string): bigint | undefined {
	return /^\+?\d+$/.test(text) && BigInt(text) < 1n << 64n ? BigInt(text) : undefined;
}

/**
 * One element of a CPU list (`3`, `1-4`), validated as crosvm's `parse_cpu_range`
 * (arch/src/lib.rs, current) or `parse_cpu_set` (src/main.rs, 2022) would, without expanding
 * the range: crosvm sets no limit on its size.
 */
export function checkCpuRange(part: string, grammar: KeyValueGrammar): void {
	if (grammar === '2022') {
		const bounds = part.split('-');
		if (bounds.length > 2) {
			throw invalidValue(part, 'invalid list syntax', grammar);
		}

		const [first, last] = bounds.map(bound => rustUsize(bound));
		if (first === undefined || (bounds.length === 2 && last === undefined)) {
			throw invalidValue(part, 'CPU index must be a non-negative integer', grammar);
		}

		if (last !== undefined && last < first) {
			throw invalidValue(part, 'CPU ranges must be from low to high', grammar);
		}

		return;
	}

	const dash = part.indexOf('-');
	const bounds = dash === -1 ? [part] : [part.slice(0, dash), part.slice(dash + 1)];
	const parsed = bounds.map(bound => {
		const value = rustUsize(bound);
		if (value === undefined) {
			throw new ValueError(`invalid CPU index ${bound} - index must be a non-negative integer`);
		}

		return value;
	});
	if (parsed.length === 2 && parsed[1]! < parsed[0]!) {
		throw new ValueError(`invalid CPU range ${part} - ranges must be from low to high`);
	}
}

/** crosvm's `from_key_values` for a struct: throws `ValueError` with serde_keyvalue's text. */
export function parseKeyValues(text: string, schema: KeyValueSchema, grammar: KeyValueGrammar = 'current'): KeyValues {
	return new Deserializer(text, grammar).parse(schema);
}
