/**
 * Turns what XState's inspection stream carries (snapshots, events, action params) into plain JSON
 * values. Those may hold anything: errors, cycles, bigints, functions, child processes, loggers.
 * Plain objects and arrays are copied; everything else becomes a small tagged summary, so a
 * recording stays small and never throws.
 */

/** A value that `JSON.stringify` writes as is. */
export type JsonValue = null | boolean | number | string | JsonValue[] | {[key: string]: JsonValue};

export interface SerializeOptions {
	/** Objects nested deeper than this become `'[Depth]'`. Default 12. */
	maxDepth?: number;
	/** Strings longer than this are cut, with a note of the full length. Default 10,000. */
	maxStringLength?: number;
}

const defaultMaxDepth = 12;
const defaultMaxStringLength = 10_000;

/** Whether a value looks like an XState actor reference (it has a session and can be sent to). */
export function isActorRefLike(value: unknown): value is {sessionId: string; id?: string; send: unknown} {
	return typeof value === 'object'
		&& value !== null
		&& typeof (value as {sessionId?: unknown}).sessionId === 'string'
		&& typeof (value as {send?: unknown}).send === 'function';
}

function isPlainObject(value: object): boolean {
	const prototype: unknown = Object.getPrototypeOf(value);
	return prototype === Object.prototype || prototype === null;
}

function className(value: object): string {
	const constructor = (value as {constructor?: {name?: unknown}}).constructor;
	return typeof constructor?.name === 'string' && constructor.name !== '' ? constructor.name : 'Object';
}

/** Converts any value to a JSON value; never throws. */
export function toJsonValue(value: unknown, options: SerializeOptions = {}): JsonValue {
	const maxDepth = options.maxDepth ?? defaultMaxDepth;
	const maxStringLength = options.maxStringLength ?? defaultMaxStringLength;
	// The objects on the current path: meeting one again is a cycle (shared references are fine).
	const ancestors = new Set<object>();

	const convert = (input: unknown, depth: number): JsonValue | undefined => {
		switch (typeof input) {
			case 'undefined':
				return undefined;
			case 'boolean':
				return input;
			case 'number':
				// JSON has no -0 (it writes 0) and no NaN or infinities (it writes null): say what it can.
				return Number.isFinite(input) ? (Object.is(input, -0) ? 0 : input) : String(input);
			case 'string':
				return input.length > maxStringLength
					? `${input.slice(0, maxStringLength)}…[${input.length} chars]`
					: input;
			case 'bigint':
				return `${input}n`;
			case 'symbol':
				return input.toString();
			case 'function':
				return `[Function ${input.name || 'anonymous'}]`;
			default:
				break;
		}

		if (input === null) {
			return null;
		}

		const object = input as object;
		if (ancestors.has(object)) {
			return '[Circular]';
		}

		if (depth > maxDepth) {
			return '[Depth]';
		}

		if (isActorRefLike(object)) {
			return {$actor: object.sessionId, ...(typeof object.id === 'string' ? {id: object.id} : {})};
		}

		ancestors.add(object);
		try {
			return convertObject(object, depth);
		} catch {
			// A getter that throws, a revoked proxy: summarize instead of failing the recording.
			return `[Unserializable ${className(object)}]`;
		} finally {
			ancestors.delete(object);
		}
	};

	const convertEntries = (entries: Iterable<[string, unknown]>, depth: number): {[key: string]: JsonValue} => {
		const result: {[key: string]: JsonValue} = {};
		for (const [key, entry] of entries) {
			const converted = convert(entry, depth + 1);
			if (converted !== undefined) {
				result[key] = converted;
			}
		}

		return result;
	};

	const convertObject = (object: object, depth: number): JsonValue => {
		if (Array.isArray(object)) {
			// Array.from visits holes of sparse arrays too (map would leave them out).
			return Array.from(object as unknown[], item => convert(item, depth + 1) ?? null);
		}

		if (object instanceof Error) {
			const error = object as Error & {code?: unknown; cause?: unknown};
			const result: {[key: string]: JsonValue} = {$error: error.name, message: error.message};
			if (typeof error.code === 'string' || typeof error.code === 'number') {
				result['code'] = error.code;
			}

			// Own enumerable fields (InvalidConfigError's field and reason, execa's exitCode).
			Object.assign(result, convertEntries(Object.entries(error).filter(([key]) => key !== 'stack' && key !== 'name'), depth));
			if (error.cause !== undefined) {
				result['cause'] = convert(error.cause, depth + 1) ?? null;
			}

			return result;
		}

		if (object instanceof Date) {
			return Number.isNaN(object.getTime()) ? 'Invalid Date' : object.toISOString();
		}

		if (object instanceof Map) {
			return {$map: [...object.entries()].map(([key, entry]) => [convert(key, depth + 1) ?? null, convert(entry, depth + 1) ?? null])};
		}

		if (object instanceof Set) {
			return {$set: [...object].map(item => convert(item, depth + 1) ?? null)};
		}

		if (ArrayBuffer.isView(object) || object instanceof ArrayBuffer) {
			return {$bytes: object.byteLength, type: className(object)};
		}

		if (object instanceof RegExp) {
			return object.toString();
		}

		// An object that says how it serializes (VmEnvironment, the VMM process, the CID pool) is
		// taken at its word.
		const {toJSON} = object as {toJSON?: unknown};
		if (typeof toJSON === 'function') {
			return convert(toJSON.call(object), depth + 1) ?? null;
		}

		if (isPlainObject(object)) {
			return convertEntries(Object.entries(object), depth);
		}

		// Other class instances (loggers, drivers, child processes, streams) are named, not walked.
		return {$instance: className(object)};
	};

	return convert(value, 0) ?? null;
}
