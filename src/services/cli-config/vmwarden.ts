import {InvalidConfigError} from '../../errors.js';

/**
 * vmwarden's own config format: a `VmConfig` as JSON, files named by path (a relative path is
 * relative to the config file), and an optional `$schema` naming docs/config.schema.json.
 */
export function fromVmwardenConfig(json: unknown): Record<string, unknown> {
	if (typeof json !== 'object' || json === null || Array.isArray(json)) {
		throw new InvalidConfigError('config', 'must be a JSON object');
	}

	const config: Record<string, unknown> = {};
	for (const [key, value] of Object.entries(json)) {
		if (key !== '$schema') {
			// Defined, not assigned: a `"__proto__"` key must stay a key (and be refused), not set a prototype.
			Object.defineProperty(config, key, {value, enumerable: true, writable: true, configurable: true});
		}
	}

	// Disks are rewritten when their paths are resolved: copy them, never touch the parsed input.
	if (Array.isArray(config['disks'])) {
		config['disks'] = config['disks'].map((disk: unknown) => typeof disk === 'object' && disk !== null && !Array.isArray(disk) ? {...disk} : disk);
	}

	if (Array.isArray(config['indirectFiles'])) {
		config['indirectFiles'] = [...config['indirectFiles'] as unknown[]];
	}

	return config;
}
