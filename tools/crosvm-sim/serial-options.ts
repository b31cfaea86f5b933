import type {SimBuild} from './build.js';
import {invalidValue, ValueError} from './failures.js';
import {parseKeyValues, type KeyValueGrammar, type KeyValueSchema} from './key-values.js';
import {checkPciAddress} from './pci-address.js';

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

/** `SerialParameters` of devices/src/serial_device.rs at efdcf90a4: snake_case keys, no `unix-stream`. */
const SCHEMA_2022: KeyValueSchema = {
	keys: [
		['type', {kind: 'enum', variants: ['file', 'stdout', 'sink', 'syslog', 'unix']}],
		['hardware', {kind: 'enum', variants: ['serial', 'virtio-console', 'debugcon']}],
		['path', {kind: 'string'}],
		['input', {kind: 'string'}],
		['num', {kind: 'unsigned', bits: 8}],
		['console', {kind: 'bool'}],
		['earlycon', {kind: 'bool'}],
		['stdin', {kind: 'bool'}],
		['out_timestamp', {kind: 'bool'}],
		['debugcon_port', {kind: 'unsigned', bits: 16}],
	],
};

/** `SerialParameters` of devices/src/serial_device.rs at f1e797a68 (Linux and Android builds). */
const SCHEMA_CURRENT: KeyValueSchema = {
	keys: [
		['type', {kind: 'enum', variants: ['file', 'stdout', 'sink', 'syslog', 'unix', 'unix-stream']}],
		['hardware', {kind: 'enum', variants: ['serial', 'virtio-console', 'debugcon'], aliases: {'legacy-virtio-console': 'virtio-console'}}],
		['name', {kind: 'string'}],
		['path', {kind: 'string'}],
		['input', {kind: 'string'}],
		['input-unix-stream', {kind: 'bool'}],
		['num', {kind: 'unsigned', bits: 8}],
		['console', {kind: 'bool'}],
		['earlycon', {kind: 'bool'}],
		['stdin', {kind: 'bool'}],
		['out-timestamp', {kind: 'bool'}],
		['debugcon-port', {kind: 'unsigned', bits: 16}],
		['pci-address', {kind: 'string', check: checkPciAddress}],
		['max-queue-sizes', {kind: 'seq', element: {kind: 'unsigned', bits: 16}}],
	],
	aliases: {out_timestamp: 'out-timestamp', debugcon_port: 'debugcon-port'},
};

/**
 * The checks made while parsing (argument errors): `parse_serial_options` in src/main.rs at
 * efdcf90a4, `validate_serial_parameters` in src/crosvm/config.rs at f1e797a68.
 */
function validate(parameters: SerialParameters, pciAddress: string | undefined, grammar: KeyValueGrammar): SerialParameters {
	if (parameters.stdin && parameters.input !== undefined) {
		throw new ValueError(`${grammar === '2022' ? 'too many arguments: ' : ''}Cannot specify both stdin and input options`);
	}

	if (parameters.num < 1) {
		throw invalidValue(String(parameters.num), 'Serial port num must be at least 1', grammar);
	}

	if (parameters.hardware === 'serial' && parameters.num > 4) {
		throw invalidValue(String(parameters.num), 'Serial port num must be 4 or less', grammar);
	}

	if (pciAddress !== undefined && parameters.hardware !== 'virtio-console') {
		throw invalidValue(pciAddress, 'Providing serial PCI address is only supported for virtio-console hardware type', grammar);
	}

	return parameters;
}

/** A `--serial` value: crosvm's key-value list, whose first key is `type` (`--serial stdout`). */
export function parseSerial(text: string, grammar: KeyValueGrammar): SerialParameters {
	let values;
	try {
		values = parseKeyValues(text, grammar === '2022' ? SCHEMA_2022 : SCHEMA_CURRENT, grammar);
	} catch (error) {
		// 2022: `argument::Error::ConfigParserError`.
		if (grammar === '2022' && error instanceof ValueError) {
			throw new ValueError(`failed to parse key-value arguments: ${error.message}`);
		}

		throw error;
	}

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

	return validate(parameters, values['pci-address'] as string | undefined, grammar);
}

/** The `--serial` parser of a build. */
export function serialParser(build: SimBuild): (text: string) => SerialParameters {
	const grammar = build.dialect === 'aosp-2022' ? '2022' : 'current';
	return text => parseSerial(text, grammar);
}

/** The key crosvm files a device under: two devices with the same one are refused. */
export function serialKey(parameters: Pick<SerialParameters, 'hardware' | 'num'>): string {
	return `${parameters.hardware}/${parameters.num}`;
}
