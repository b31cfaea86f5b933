import {types} from 'node:util';
import {InvalidConfigError} from '../../errors.js';

/**
 * Refuses a proxy, before any of its traps runs: they would run while the value is checked, and
 * again, answering anything, when it is read. `kind` names what was expected (`object`, `array`).
 * Checked before `Array.isArray`, which throws on a revoked proxy.
 */
export function checkNotProxy(field: string, value: unknown, kind: string): void {
	if (types.isProxy(value)) {
		throw new InvalidConfigError(field, `must be a plain ${kind}, not a proxy`);
	}
}

/** Refuses an object of another prototype than `Object.prototype` or `null`: a class instance, a `Map`. */
export function checkPlainPrototype(field: string, value: object): void {
	const prototype: unknown = Object.getPrototypeOf(value);
	if (prototype !== Object.prototype && prototype !== null) {
		throw new InvalidConfigError(field, 'must be a plain object');
	}
}
