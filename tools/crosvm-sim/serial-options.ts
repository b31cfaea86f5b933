import type {SimBuild} from './build.js';
import {ValueError} from './failures.js';
import {parseKeyValues, type KeyValueSchema} from './key-values.js';
import {parseRustUnsigned} from './numbers.js';

export type SerialType = 'file' | 'stdout' | 'sink' | 'syslog' | 'unix' | 'unix-stream';

export type SerialHardware = 'serial' | 'virtio-console' | 'debugcon';

/** One `--serial` device, after parsing. */
export interface SerialParameters {
	type: SerialType;
	hardware: SerialHardware;
	/** 1-based: `hardware=serial,num=1` is the guest's ttyS0, `virtio-console,num=1` its hvc0. */
	num: number;
	path?: string;
	input?: string;
	console: boolean;
	earlycon: boolean;
	stdin: boolean;
}

const CURRENT_SCHEMA: KeyValueSchema = {
	keys: [
		['type', {kind: 'enum', variants: ['file', 'stdout', 'sink', 'syslog', 'unix', 'unix-stream']}],
		['hardware', {kind: 'enum', variants: ['serial', 'virtio-console', 'debugcon'], aliases: {'legacy-virtio-console': 'virtio-console'}}],
		['name', {kind: 'string'}],
		['path', {kind: 'string'}],
		['input', {kind: 'string'}],
		['num', {kind: 'unsigned', bits: 8}],
		['console', {kind: 'bool'}],
		['earlycon', {kind: 'bool'}],
		['stdin', {kind: 'bool'}],
		['out-timestamp', {kind: 'bool'}],
		['debugcon-port', {kind: 'unsigned', bits: 16}],
		['pci-address', {kind: 'string'}],
		['max-queue-sizes', {kind: 'list'}],
	],
};

function invalidValue(value: string, expected: string): ValueError {
	return new ValueError(`invalid value "${value}": ${expected}`);
}

/** The checks crosvm's `validate_serial_parameters` makes while parsing (argument errors). */
function validate(parameters: SerialParameters, pciAddress: string | undefined): SerialParameters {
	if (parameters.stdin && parameters.input !== undefined) {
		throw new ValueError('Cannot specify both stdin and input options');
	}

	if (parameters.num < 1) {
		throw invalidValue(String(parameters.num), 'Serial port num must be at least 1');
	}

	if (parameters.hardware === 'serial' && parameters.num > 4) {
		throw invalidValue(String(parameters.num), 'Serial port num must be 4 or less');
	}

	if (pciAddress !== undefined && parameters.hardware !== 'virtio-console') {
		throw invalidValue(pciAddress, 'Providing serial PCI address is only supported for virtio-console hardware type');
	}

	return parameters;
}

/** Today's `--serial`: a key-value list whose first key is `type` (`--serial stdout` is valid). */
export function parseSerialCurrent(text: string): SerialParameters {
	const values = parseKeyValues(text, CURRENT_SCHEMA);
	const parameters: SerialParameters = {
		type: (values['type'] as SerialType | undefined) ?? 'sink',
		hardware: (values['hardware'] as SerialHardware | undefined) ?? 'serial',
		num: (values['num'] as number | undefined) ?? 1,
		console: values['console'] === true,
		earlycon: values['earlycon'] === true,
		stdin: values['stdin'] === true,
	};
	if (values['path'] !== undefined) {
		parameters.path = values['path'] as string;
	}

	if (values['input'] !== undefined) {
		parameters.input = values['input'] as string;
	}

	return validate(parameters, values['pci-address'] as string | undefined);
}

function parseRustBool(key: string, value: string): boolean {
	if (value === 'true' || value === 'false') {
		return value === 'true';
	}

	throw invalidValue(value, `serial device ${key} is not parseable`);
}

/**
 * The 2022 `--serial`: a hand-written `k=v` parser. Every field needs its key and booleans need an
 * explicit value; a value is cut at a second `=` (`path=/a=b` is `/a`); no `--serial stdout`.
 */
export function parseSerial2022(text: string): SerialParameters {
	const parameters: SerialParameters = {type: 'sink', hardware: 'serial', num: 1, console: false, earlycon: false, stdin: false};
	for (const field of text.split(',')) {
		const [key = '', value = ''] = field.split('=');
		switch (key) {
			case 'type': {
				if (!['file', 'stdout', 'sink', 'syslog', 'unix'].includes(value)) {
					throw invalidValue(value, 'serial type must be one of `file`, `stdout`, `sink`, `syslog` or `unix`');
				}

				parameters.type = value as SerialType;
				break;
			}

			case 'hardware': {
				if (value !== 'serial' && value !== 'virtio-console') {
					throw invalidValue(value, 'serial hardware must be `serial` or `virtio-console`');
				}

				parameters.hardware = value;
				break;
			}

			case 'num': {
				try {
					parameters.num = parseRustUnsigned(value, 8);
				} catch (error) {
					throw invalidValue(value, `serial device number is not parsable: ${(error as Error).message}`);
				}

				if (parameters.num < 1) {
					throw invalidValue(value, 'serial device number must be larger than 0');
				}

				break;
			}

			case 'console':
			case 'earlycon':
			case 'stdin': {
				parameters[key] = parseRustBool(key, value);
				if (key === 'stdin' && parameters.stdin && parameters.input !== undefined) {
					throw new ValueError('Cannot specify both stdin and input options');
				}

				break;
			}

			case 'path': {
				parameters.path = value;
				break;
			}

			case 'input': {
				if (parameters.stdin) {
					throw new ValueError('Cannot specify both stdin and input options');
				}

				parameters.input = value;
				break;
			}

			default: {
				throw new ValueError(`unknown serial parameter: ${key}`);
			}
		}
	}

	if (parameters.hardware === 'serial' && parameters.num > 4) {
		throw invalidValue(String(parameters.num), 'Serial device number too large');
	}

	return parameters;
}

/** The `--serial` parser of a build. */
export function serialParser(build: SimBuild): (text: string) => SerialParameters {
	return build.dialect === 'aosp-2022' ? parseSerial2022 : parseSerialCurrent;
}

/** The key crosvm files a device under: two devices with the same one are refused. */
export function serialKey(parameters: Pick<SerialParameters, 'hardware' | 'num'>): string {
	return `${parameters.hardware}/${parameters.num}`;
}
