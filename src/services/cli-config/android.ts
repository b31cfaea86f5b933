import {InvalidConfigError} from '../../errors.js';

/**
 * Android's `vm_config.json` (the `vm run` tool's format: packages/modules/Virtualization,
 * libs/vmconfig/src/lib.rs) mapped to vmwarden's config: snake_case fields, disks that may be
 * assembled from partitions, and a required `platform_version` in Rust's semver syntax.
 */

/** The fields vmwarden maps, and the `VmConfig` field each becomes. */
const MAPPED: ReadonlyMap<string, string> = new Map([
	['kernel', 'kernel'],
	['initrd', 'initrd'],
	['params', 'params'],
	['bootloader', 'bootloader'],
	['disks', 'disks'],
	['protected', 'protected'],
	['memory_mib', 'memoryMib'],
	['platform_version', 'platformVersion'],
	['task_profiles', 'taskProfiles'],
]);

/** Read and dropped: a label for people, nothing the VM is made of. */
const IGNORED: ReadonlySet<string> = new Set(['name']);

/** Later Android fields vmwarden knows it cannot honour: refused rather than silently dropped. */
const UNSUPPORTED: ReadonlySet<string> = new Set(['cpu_topology', 'devices', 'console_input_device', 'gdb_port', 'custom_memory_backing_files', 'hugepages', 'boost_uclamp', 'balloon', 'usb_config', 'display_config', 'input_devices', 'audio_config', 'network', 'vm_secret']);

const DISK_FIELDS: ReadonlySet<string> = new Set(['image', 'partitions', 'writable']);

/** Android's field for a `VmConfig` field (for error messages that name what the user wrote). */
export function androidFieldName(field: string): string {
	for (const [android, ours] of MAPPED) {
		if (field === ours || field.startsWith(`${ours}[`) || field.startsWith(`${ours}.`)) {
			return android + field.slice(ours.length);
		}
	}

	return field;
}

/** Whether a JSON object uses a field only Android's format has. */
export function looksAndroid(config: Record<string, unknown>): boolean {
	return Object.keys(config).some(key => (MAPPED.has(key) && MAPPED.get(key) !== key) || IGNORED.has(key) || UNSUPPORTED.has(key))
		|| (Array.isArray(config['disks']) && config['disks'].some(disk => typeof disk === 'object' && disk !== null && 'partitions' in disk));
}

function isRecord(value: unknown): value is Record<string, unknown> {
	return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Rust's `semver::VersionReq` as npm's `semver` reads ranges: comparators are separated by commas
 * (npm: spaces), and a bare version means `^` (npm: that version exactly, or its x-range).
 */
export function rustVersionReq(requirement: string): string {
	return requirement.split(',').map(part => {
		const comparator = part.trim();
		return /^\d/.test(comparator) ? `^${comparator}` : comparator;
	}).join(' ');
}

function mapDisk(disk: unknown, index: number): unknown {
	const field = `disks[${index}]`;
	if (!isRecord(disk)) {
		throw new InvalidConfigError(field, 'must be an object {image, writable} or {partitions, writable}');
	}

	for (const key of Object.keys(disk)) {
		if (!DISK_FIELDS.has(key)) {
			throw new InvalidConfigError(`${field}.${key}`, 'is not a field of an Android disk');
		}
	}

	if (!Object.hasOwn(disk, 'writable')) {
		throw new InvalidConfigError(`${field}.writable`, 'is missing: Android\'s format requires it');
	}

	const partitions = disk['partitions'];
	if (partitions !== undefined && !Array.isArray(partitions)) {
		throw new InvalidConfigError(`${field}.partitions`, 'must be an array');
	}

	const hasImage = disk['image'] !== undefined && disk['image'] !== null;
	if (hasImage === (partitions !== undefined && partitions.length > 0)) {
		throw new InvalidConfigError(field, 'Exactly one of image and partitions must be specified.');
	}

	if (!hasImage) {
		throw new InvalidConfigError(`${field}.partitions`, 'a composite disk assembled from partitions is not supported: build the disk image first and name it as image');
	}

	return {image: disk['image'], writable: disk['writable']};
}

/**
 * Maps an Android `vm_config.json` (parsed, unchecked) to a `VmConfig` for `validateConfig`.
 * Throws `InvalidConfigError` naming the Android field for what only this format can get wrong.
 */
export function fromAndroidConfig(json: unknown): Record<string, unknown> {
	if (!isRecord(json)) {
		throw new InvalidConfigError('config', 'must be a JSON object');
	}

	const config: Record<string, unknown> = {};
	for (const [key, value] of Object.entries(json)) {
		const ours = MAPPED.get(key);
		if (ours !== undefined) {
			// serde reads `null` as an absent optional field.
			if (value !== null) {
				config[ours] = value;
			}
		} else if (UNSUPPORTED.has(key)) {
			throw new InvalidConfigError(key, 'is not supported by vmwarden');
		} else if (!IGNORED.has(key)) {
			throw new InvalidConfigError(key, 'is not a field of Android\'s vm_config.json');
		}
	}

	if (config['platformVersion'] === undefined) {
		throw new InvalidConfigError('platform_version', 'is missing: Android\'s format requires it (a semver requirement such as "~1.0")');
	}

	if (typeof config['platformVersion'] === 'string') {
		config['platformVersion'] = rustVersionReq(config['platformVersion']);
	}

	const {disks} = config;
	if (Array.isArray(disks)) {
		config['disks'] = disks.map((disk, index) => mapDisk(disk, index));
	}

	return config;
}
