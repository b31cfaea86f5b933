import {types} from 'node:util';
import semver from 'semver';
import {InvalidConfigError, CpuAffinityError} from '../../errors.js';
import {listConfigFiles} from './files.js';
import {parseCpuAffinity} from './cpu-affinity.js';
import {checkCount as checkEntries, checkStringBytes, CONFIG_LIMITS} from './bounds.js';
import {checkNotProxy, checkPlainPrototype} from './plain-data.js';
import {isFileHandle} from './file-access.js';
import {resolveFilePolicy, type FilePolicy, type FileRequester} from './file-policy.js';
import {checkHandedDescriptor, openConfigPath, STANDARD_STREAMS} from './open-file.js';
import {PLATFORM_VERSION, type FileSource, type VmConfig} from './vm-config.js';

const CONFIG_FIELDS: ReadonlySet<string> = new Set<keyof VmConfig>([
	'bootloader',
	'kernel',
	'initrd',
	'disks',
	'params',
	'protected',
	'memoryMib',
	'cpus',
	'cpuAffinity',
	'taskProfiles',
	'consoleOutput',
	'logOutput',
	'indirectFiles',
	'platformVersion',
	'detectHangup',
	'balloon',
	'capture',
]);

const CAPTURE_FIELDS: ReadonlySet<string> = new Set(['console', 'log']);

// The reference keeps memory and CPU counts in a NonZeroU32.
const MAX_COUNT = 0xFF_FF_FF_FF;

const NUL = '\0';

/** An object, not an array; a proxy counts, for `checkPlainRecord` to refuse (`Array.isArray` throws on a revoked one). */
function isRecord(value: unknown): value is Record<string, unknown> {
	return typeof value === 'object' && value !== null && (types.isProxy(value) || !Array.isArray(value));
}

/**
 * Refuses anything but a plain object of plain values: a class instance, a getter (which could
 * answer validation one way and the command builder another) or a field inherited from a polluted
 * `Object.prototype`. `__proto__` as a key of parsed JSON is an own key, refused as a stranger.
 */
function checkPlainRecord(field: string, value: Record<string, unknown>, fields: ReadonlySet<string>, kind: string): void {
	checkNotProxy(field, value, 'object');
	checkPlainPrototype(field, value);

	const fieldOf = (key: string): string => field === 'config' ? key : `${field}.${key}`;
	// Non-enumerable keys too: a hidden getter would otherwise be read unseen. Symbols too: no field is one.
	for (const key of Reflect.ownKeys(value)) {
		if (typeof key === 'symbol') {
			throw new InvalidConfigError(fieldOf(String(key)), `is not a ${kind} field`);
		}

		if (!fields.has(key)) {
			throw new InvalidConfigError(fieldOf(key), `is not a ${kind} field`);
		}

		if (Object.getOwnPropertyDescriptor(value, key)?.get !== undefined) {
			throw new InvalidConfigError(fieldOf(key), 'must be a plain value, not a getter');
		}
	}

	for (const key of fields) {
		if (!Object.hasOwn(value, key) && value[key] !== undefined) {
			throw new InvalidConfigError(fieldOf(key), 'is inherited from Object.prototype, not set on the object itself');
		}
	}
}

function checkString(field: string, value: unknown, maxBytes: number): asserts value is string {
	if (typeof value !== 'string') {
		throw new InvalidConfigError(field, 'must be a string');
	}

	checkStringBytes(field, value, maxBytes);
	if (value.includes(NUL)) {
		throw new InvalidConfigError(field, 'contains a NUL byte');
	}
}

function checkBoolean(field: string, value: unknown): void {
	if (value !== undefined && typeof value !== 'boolean') {
		throw new InvalidConfigError(field, 'must be a boolean');
	}
}

function checkCount(field: string, value: unknown): void {
	if (value === undefined) {
		return;
	}

	if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
		throw new InvalidConfigError(field, 'must be a positive integer');
	}

	if (value > MAX_COUNT) {
		throw new InvalidConfigError(field, `must be at most ${MAX_COUNT}`);
	}
}

/**
 * Refuses anything but a plain array of plain values, as `checkPlainRecord` does for objects: a
 * proxy, another prototype, a getter at an index, or an own property besides its indices and
 * `length` (an own `entries` would hand validation other elements than the command builder sees).
 */
function checkArray(field: string, value: unknown, max: number): asserts value is unknown[] | undefined {
	if (value === undefined) {
		return;
	}

	checkNotProxy(field, value, 'array');
	if (!Array.isArray(value)) {
		throw new InvalidConfigError(field, 'must be an array');
	}

	checkEntries(field, value, max);
	if (Object.getPrototypeOf(value) !== Array.prototype) {
		throw new InvalidConfigError(field, 'must be a plain array');
	}

	// Symbols too: an own Symbol.iterator would hand a for-of loop other elements than .entries().
	for (const key of Reflect.ownKeys(value)) {
		if (key === 'length') {
			continue;
		}

		const index = typeof key === 'string' ? Number(key) : Number.NaN;
		if (typeof key === 'symbol' || !Number.isInteger(index) || index < 0 || index >= value.length || String(index) !== key) {
			throw new InvalidConfigError(`${field}.${String(key)}`, 'is not an array element: a plain array has only its elements');
		}

		if (Object.getOwnPropertyDescriptor(value, key)?.get !== undefined) {
			throw new InvalidConfigError(`${field}[${key}]`, 'must be a plain value, not a getter');
		}
	}
}

function checkSource(field: string, source: unknown): asserts source is FileSource {
	if (typeof source === 'string') {
		checkString(field, source, CONFIG_LIMITS.pathBytes);
		if (source.length === 0) {
			throw new InvalidConfigError(field, 'must not be an empty path');
		}
	} else if (typeof source === 'number') {
		if (!Number.isSafeInteger(source) || source < 0) {
			throw new InvalidConfigError(field, 'must be a non-negative integer when it is a descriptor');
		}

		if (source <= 2) {
			throw new InvalidConfigError(field, STANDARD_STREAMS);
		}
	} else if (isFileHandle(source)) {
		// FileHandle.close() sets fd to -1.
		if (source.fd === -1) {
			throw new InvalidConfigError(field, 'the FileHandle is closed');
		}
	} else {
		throw new InvalidConfigError(field, 'must be a path, an open descriptor number or a FileHandle');
	}
}

function checkOptionalSource(field: string, source: unknown): void {
	if (source !== undefined) {
		checkSource(field, source);
	}
}

const DISK_FIELDS: ReadonlySet<string> = new Set(['image', 'writable']);

function checkDisks(disks: unknown): void {
	checkArray('disks', disks, CONFIG_LIMITS.disks);
	for (const [index, disk] of (disks ?? []).entries()) {
		if (!isRecord(disk)) {
			throw new InvalidConfigError(`disks[${index}]`, 'must be an object {image, writable}');
		}

		checkPlainRecord(`disks[${index}]`, disk, DISK_FIELDS, 'DiskConfig');

		checkSource(`disks[${index}].image`, disk['image']);
		if (typeof disk['writable'] !== 'boolean') {
			throw new InvalidConfigError(`disks[${index}].writable`, 'must be a boolean');
		}
	}
}

function checkTaskProfiles(profiles: unknown): void {
	checkArray('taskProfiles', profiles, CONFIG_LIMITS.taskProfiles);
	for (const [index, profile] of (profiles ?? []).entries()) {
		const field = `taskProfiles[${index}]`;
		checkString(field, profile, CONFIG_LIMITS.taskProfileBytes);
		if (profile.length === 0) {
			throw new InvalidConfigError(field, 'must not be empty');
		}

		// The 2022 crosvm splits its --task-profiles value at commas: one name must stay one name.
		if (profile.includes(',')) {
			throw new InvalidConfigError(field, 'must not contain a comma');
		}

		if (/\s/.test(profile)) {
			throw new InvalidConfigError(field, 'must not contain white space');
		}
	}
}

function checkCpuAffinity(affinity: unknown): void {
	if (affinity === undefined) {
		return;
	}

	checkString('cpuAffinity', affinity, CONFIG_LIMITS.cpuAffinityBytes);
	try {
		parseCpuAffinity(affinity);
	} catch (error) {
		if (error instanceof CpuAffinityError) {
			throw new InvalidConfigError('cpuAffinity', error.message, {cause: error});
		}

		throw error;
	}
}

function checkPlatformVersion(range: unknown): void {
	if (range === undefined) {
		return;
	}

	checkString('platformVersion', range, CONFIG_LIMITS.platformVersionBytes);
	if (semver.validRange(range) === null) {
		throw new InvalidConfigError('platformVersion', `${JSON.stringify(range)} is not a valid semver range`);
	}

	if (!semver.satisfies(PLATFORM_VERSION, range)) {
		throw new InvalidConfigError(
			'platformVersion',
			`Incompatible platform version. The config is compatible with platform version(s) ${range}, but the actual platform version is ${PLATFORM_VERSION}`,
		);
	}
}

function checkCapture(capture: unknown): void {
	if (capture === undefined) {
		return;
	}

	if (!isRecord(capture)) {
		throw new InvalidConfigError('capture', 'must be an object: {console?: boolean, log?: boolean}');
	}

	checkPlainRecord('capture', capture, CAPTURE_FIELDS, 'capture');
	checkBoolean('capture.console', capture['console']);
	checkBoolean('capture.log', capture['log']);
}

/**
 * Everything `validateConfig` checks that needs no I/O: types, the reference's rules, value
 * grammars. `crosvmCommand` runs it, so it never builds a command line for a config the reference
 * would refuse.
 */
export function checkConfigShape(config: VmConfig): void {
	if (!isRecord(config)) {
		throw new InvalidConfigError('config', 'must be an object');
	}

	checkPlainRecord('config', config, CONFIG_FIELDS, 'VmConfig');
	const fields = config as Record<keyof VmConfig, unknown>;
	checkOptionalSource('bootloader', fields.bootloader);
	checkOptionalSource('kernel', fields.kernel);
	checkOptionalSource('initrd', fields.initrd);
	checkDisks(fields.disks);
	if (fields.params !== undefined) {
		checkString('params', fields.params, CONFIG_LIMITS.paramsBytes);
	}

	checkBoolean('protected', fields.protected);
	checkCount('memoryMib', fields.memoryMib);
	checkCount('cpus', fields.cpus);
	checkCpuAffinity(fields.cpuAffinity);
	checkTaskProfiles(fields.taskProfiles);
	checkOptionalSource('consoleOutput', fields.consoleOutput);
	checkOptionalSource('logOutput', fields.logOutput);
	checkArray('indirectFiles', fields.indirectFiles, CONFIG_LIMITS.indirectFiles);
	for (const [index, source] of (fields.indirectFiles ?? []).entries()) {
		checkSource(`indirectFiles[${index}]`, source);
	}

	checkBoolean('detectHangup', fields.detectHangup);
	checkBoolean('balloon', fields.balloon);
	checkCapture(fields.capture);

	// The reference's validate_config, in its order and with its messages.
	if (config.bootloader === undefined && config.kernel === undefined) {
		throw new InvalidConfigError('kernel', 'VM must have either a bootloader or a kernel image.');
	}

	if (config.bootloader !== undefined && (config.kernel !== undefined || config.initrd !== undefined)) {
		throw new InvalidConfigError(config.kernel === undefined ? 'initrd' : 'kernel', 'Can\'t have both bootloader and kernel/initrd image.');
	}

	checkPlatformVersion(fields.platformVersion);
}

/**
 * Refuses, with an `InvalidConfigError` naming the field and the reason, a config that crosvm or
 * the reference would refuse, or that reaches beyond what `policy` lets it, before anything is
 * spawned: wrong types, sizes over `CONFIG_LIMITS`, the reference's rules, a `cpuAffinity` crosvm's
 * grammar rejects, a task profile that would smuggle in others, a NUL byte, a file the policy or
 * the requester may not have, a descriptor that is not open or not the config's to name.
 *
 * Paths are looked at without being opened for reading or writing (see `openConfigPath`): nothing
 * is read, written or created, no FIFO is waited on. `openDescriptors` makes every check again on
 * the descriptors it hands to the VMM; this one answers early, at `createVm`.
 */
export function validateConfig(config: VmConfig, policy?: FilePolicy, requester?: FileRequester): void {
	checkConfigShape(config);
	const resolved = resolveFilePolicy(policy, requester);
	for (const {source, access, field} of listConfigFiles(config)) {
		if (typeof source === 'string') {
			openConfigPath({field, path: source, access}, resolved, false);
		} else {
			checkHandedDescriptor(field, source, access, resolved);
		}
	}
}
