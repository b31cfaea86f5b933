import {CONFIG_LIMITS} from '../config/bounds.js';

/**
 * The JSON Schemas of the config formats (draft-07, which fastify's Ajv and OpenAPI 3.1 both
 * read). They are a first, declarative check and documentation: `validateConfig` remains the
 * authority (it counts UTF-8 bytes where a schema counts characters, and checks the files).
 */

type JsonSchema = Record<string, unknown>;

// The reference keeps memory and CPU counts in a NonZeroU32.
const MAX_COUNT = 0xFF_FF_FF_FF;

function pathSchema(description: string, absolute: boolean): JsonSchema {
	return {
		type: 'string',
		minLength: 1,
		maxLength: CONFIG_LIMITS.pathBytes,
		...(absolute ? {pattern: '^/'} : {}),
		description: absolute ? `${description} An absolute path.` : `${description} A relative path is relative to the config file.`,
	};
}

/** vmwarden's config format; with `absolutePaths`, as the daemon's API takes it. */
export function vmConfigSchema({absolutePaths}: {absolutePaths: boolean}): JsonSchema {
	const path = (description: string) => pathSchema(description, absolutePaths);
	return {
		type: 'object',
		description: 'A VM to run: vmwarden\'s VmConfig, with files named by path.',
		additionalProperties: false,
		properties: {
			...(absolutePaths ? {} : {$schema: {type: 'string', description: 'The schema this file follows; ignored.'}}),
			bootloader: path('A bootloader (crosvm --bios); excludes kernel and initrd.'),
			kernel: path('The guest kernel image.'),
			initrd: path('An initial ramdisk for the kernel.'),
			disks: {
				type: 'array',
				maxItems: CONFIG_LIMITS.disks,
				description: 'Block devices, in guest order.',
				items: {
					type: 'object',
					additionalProperties: false,
					required: ['image', 'writable'],
					properties: {
						image: path('The disk image (a regular file or a block device).'),
						writable: {type: 'boolean', description: 'Whether the guest may write it.'},
					},
				},
			},
			params: {type: 'string', maxLength: CONFIG_LIMITS.paramsBytes, description: 'Extra kernel command line.'},
			protected: {type: 'boolean', description: 'Run as a protected VM.'},
			memoryMib: {type: 'integer', minimum: 1, maximum: MAX_COUNT, description: 'Guest memory in MiB.'},
			cpus: {type: 'integer', minimum: 1, maximum: MAX_COUNT, description: 'Number of vCPUs.'},
			cpuAffinity: {type: 'string', maxLength: CONFIG_LIMITS.cpuAffinityBytes, description: 'crosvm\'s --cpu-affinity value: 0,1-3 or 0=0:1=1-2.'},
			taskProfiles: {
				type: 'array',
				maxItems: CONFIG_LIMITS.taskProfiles,
				description: 'Android task profiles applied to crosvm\'s threads.',
				items: {type: 'string', minLength: 1, maxLength: CONFIG_LIMITS.taskProfileBytes, pattern: '^[^,\\s]+$'},
			},
			consoleOutput: path('Where the guest console goes (appended). Discarded when absent.'),
			logOutput: path('Where the guest log goes (appended). Discarded when absent.'),
			indirectFiles: {type: 'array', maxItems: CONFIG_LIMITS.indirectFiles, items: path('A file crosvm inherits without naming it.'), description: 'Files crosvm inherits without naming them on its command line.'},
			platformVersion: {type: 'string', maxLength: CONFIG_LIMITS.platformVersionBytes, description: 'A semver range vmwarden\'s platform version must satisfy. Default *.'},
			detectHangup: {type: 'boolean', description: 'Kill the VM when its payload has not started within the boot hang-up timeout.'},
			capture: {type: 'object', additionalProperties: false, properties: {console: {type: 'boolean'}, log: {type: 'boolean'}}, description: 'Which outputs vmwarden captures as they are written (docs/operations.md).'},
		},
		anyOf: [{required: ['kernel']}, {required: ['bootloader']}],
		not: {anyOf: [{required: ['bootloader', 'kernel']}, {required: ['bootloader', 'initrd']}]},
	};
}

/** Android's `vm_config.json`, as far as vmwarden reads it. */
export function androidConfigSchema(): JsonSchema {
	const path = (description: string) => ({type: 'string', minLength: 1, maxLength: CONFIG_LIMITS.pathBytes, description});
	return {
		type: 'object',
		description: 'Android\'s vm_config.json (the vm tool\'s format), as vmwarden reads it. Disks made of partitions are refused.',
		additionalProperties: false,
		required: ['platform_version'],
		properties: {
			name: {type: 'string', description: 'A label; ignored.'},
			kernel: {...path('The guest kernel image.'), type: ['string', 'null']},
			initrd: {...path('An initial ramdisk.'), type: ['string', 'null']},
			params: {type: ['string', 'null'], maxLength: CONFIG_LIMITS.paramsBytes},
			bootloader: {...path('A bootloader; excludes kernel and initrd.'), type: ['string', 'null']},
			disks: {
				type: 'array',
				maxItems: CONFIG_LIMITS.disks,
				items: {
					type: 'object',
					additionalProperties: false,
					required: ['writable'],
					properties: {
						image: {...path('The disk image.'), type: ['string', 'null']},
						partitions: {type: 'array', maxItems: 0, description: 'Composite disks are not supported: must be empty.'},
						writable: {type: 'boolean'},
					},
				},
			},
			protected: {type: 'boolean'},
			memory_mib: {type: ['integer', 'null'], minimum: 1, maximum: MAX_COUNT},
			platform_version: {type: 'string', maxLength: CONFIG_LIMITS.platformVersionBytes, description: 'A Rust semver requirement, such as "~1.0".'},
			task_profiles: {type: 'array', maxItems: CONFIG_LIMITS.taskProfiles, items: {type: 'string', minLength: 1, maxLength: CONFIG_LIMITS.taskProfileBytes, pattern: '^[^,\\s]+$'}},
		},
	};
}

/** The schema files published in docs/schema/, by file name. */
export function publishedSchemas(): Record<string, JsonSchema> {
	return {
		'vmwarden-config.schema.json': {
			$schema: 'http://json-schema.org/draft-07/schema#',
			title: 'vmwarden VM config',
			...vmConfigSchema({absolutePaths: false}),
		},
		'android-vm-config.schema.json': {
			$schema: 'http://json-schema.org/draft-07/schema#',
			title: 'Android vm_config.json, as vmwarden reads it',
			...androidConfigSchema(),
		},
	};
}
