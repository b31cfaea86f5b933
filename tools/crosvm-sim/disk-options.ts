import type {SimBuild} from './build.js';
import {ValueError} from './failures.js';
import {parseKeyValues, type KeyValueSchema} from './key-values.js';
import {parseRustUnsigned} from './numbers.js';

/** One block device: `--block`, `--disk` (read-only) or `--rwdisk`. */
export interface DiskParameters {
	path: string;
	readOnly: boolean;
}

const DISK_ID_LENGTH = 20;

const ID_TOO_LONG = `disk id must be ${DISK_ID_LENGTH} or fewer characters`;

const BLOCK_SCHEMA: KeyValueSchema = {
	keys: [
		['path', {kind: 'string'}],
		['ro', {kind: 'bool'}],
		['root', {kind: 'bool'}],
		['sparse', {kind: 'bool'}],
		['direct', {kind: 'bool'}],
		['lock', {kind: 'bool'}],
		['block-size', {kind: 'unsigned', bits: 32}],
		['id', {kind: 'string', maxLength: DISK_ID_LENGTH, tooLong: ID_TOO_LONG}],
		['async-executor', {kind: 'string'}],
		['packed-queue', {kind: 'bool'}],
		['bootindex', {kind: 'unsigned', bits: 64}],
		['pci-address', {kind: 'string'}],
		['multiple-workers', {kind: 'bool'}],
		['num-queues', {kind: 'unsigned', bits: 16}],
	],
	aliases: {o_direct: 'direct', block_size: 'block-size'},
	required: ['path'],
};

/**
 * Today's `--block` grammar; `--disk` and `--rwdisk` (deprecated) parse the same and force `ro`.
 */
export function parseBlockCurrent(text: string, forceReadOnly?: boolean): DiskParameters {
	const values = parseKeyValues(text, BLOCK_SCHEMA);
	return {path: values['path'] as string, readOnly: forceReadOnly ?? values['ro'] === true};
}

/** The 2022 `--disk`/`--rwdisk`: `PATH[,sparse=B,o_direct=B,block_size=N,id=S]`, explicit values. */
export function parseDisk2022(text: string, readOnly: boolean): DiskParameters {
	const [path = '', ...options] = text.split(',');
	for (const option of options) {
		const equals = option.indexOf('=');
		if (equals === -1) {
			throw new ValueError('`disk` options must be of the form `kind=value`');
		}

		const kind = option.slice(0, equals);
		const value = option.slice(equals + 1);
		switch (kind) {
			case 'sparse':
			case 'o_direct': {
				if (value !== 'true' && value !== 'false') {
					throw new ValueError(`\`${kind}\` must be a boolean`);
				}

				break;
			}

			case 'block_size': {
				try {
					parseRustUnsigned(value, 32);
				} catch {
					throw new ValueError('`block_size` must be an integer');
				}

				break;
			}

			case 'id': {
				if (value.length > DISK_ID_LENGTH) {
					throw new ValueError(`\`id\` must be ${DISK_ID_LENGTH} or fewer characters`);
				}

				break;
			}

			default: {
				throw new ValueError(`unrecognized \`disk\` option: ${kind}`);
			}
		}
	}

	return {path, readOnly};
}

/** The parser of `--disk` (read-only) or `--rwdisk` in a build. */
export function diskParser(build: SimBuild, readOnly: boolean): (text: string) => DiskParameters {
	return build.dialect === 'aosp-2022' ? text => parseDisk2022(text, readOnly) : text => parseBlockCurrent(text, readOnly);
}
