import fc from 'fast-check';
import {InvalidConfigError} from '../../../src/errors.js';
import {toJsonValue} from '../../../src/services/inspection/serialize.js';

class Summarized {
	readonly secret = 'not shown';

	toJSON(): {pid: number} {
		return {pid: 42};
	}
}

class Opaque {
	readonly handle = {fd: 3};
}

test('-0, which JSON cannot write, becomes 0; NaN and infinities become their names', () => {
	expect(Object.is(toJsonValue(-0), 0)).toBe(true);
	expect(toJsonValue([-0, Number.NaN, Number.POSITIVE_INFINITY])).toEqual([0, 'NaN', 'Infinity']);
});

test('any value becomes a JSON value that survives a round trip, without throwing', () => {
	fc.assert(fc.property(fc.anything({withBigInt: true, withDate: true, withMap: true, withSet: true, withTypedArray: true, withSparseArray: true, withNullPrototype: true, withObjectString: true, withBoxedValues: true}), value => {
		const converted = toJsonValue(value);
		expect(JSON.parse(JSON.stringify(converted))).toEqual(converted);
	}), {numRuns: 300});
});

test('errors keep their name, message, code and own fields; causes are followed', () => {
	const error = new InvalidConfigError('memoryMib', 'must be positive', {cause: new RangeError('too small')});
	expect(toJsonValue(error)).toEqual({
		$error: 'InvalidConfigError',
		message: 'Invalid VM config: memoryMib: must be positive',
		code: 'INVALID_CONFIG',
		field: 'memoryMib',
		reason: 'must be positive',
		subject: 'VM config',
		cause: {$error: 'RangeError', message: 'too small'},
	});
});

test('cycles are cut, shared references are kept, deep nesting is bounded', () => {
	const shared = {n: 1};
	const cyclic: Record<string, unknown> = {a: shared, b: shared};
	cyclic['self'] = cyclic;
	expect(toJsonValue(cyclic)).toEqual({a: {n: 1}, b: {n: 1}, self: '[Circular]'});
	let deep: Record<string, unknown> = {};
	const top = deep;
	for (let level = 0; level < 50; level++) {
		deep['next'] = {};
		deep = deep['next'] as Record<string, unknown>;
	}

	expect(JSON.stringify(toJsonValue(top, {maxDepth: 3}))).toBe('{"next":{"next":{"next":{"next":"[Depth]"}}}}');
});

test('class instances are summarized by their toJSON or their class name; actors by session id', () => {
	expect(toJsonValue({process: new Summarized(), driver: new Opaque()})).toEqual({process: {pid: 42}, driver: {$instance: 'Opaque'}});
	// A plain object with a hidden toJSON (the supervisor's CID pool) is summarized too.
	const pool = {levels: [new Uint32Array(4)], held: 2};
	Object.defineProperty(pool, 'toJSON', {value: () => ({held: 2}), enumerable: false});
	expect(toJsonValue({pool})).toEqual({pool: {held: 2}});
	expect(toJsonValue({child: {sessionId: 'x:3', id: 'vm-5', send() {}}})).toEqual({child: {$actor: 'x:3', id: 'vm-5'}});
	expect(toJsonValue({n: Number.NaN, big: 10n, fn: function named() {}, sym: Symbol('s'), skipped: undefined})).toEqual({n: 'NaN', big: '10n', fn: '[Function named]', sym: 'Symbol(s)'});
});
