import type {SimBuild} from './build.js';
import {ValueError} from './failures.js';
import {parseKeyValues, type KeyType, type KeyValueGrammar, type KeyValueSchema} from './key-values.js';
import {checkPciAddress} from './pci-address.js';

/** One block device: `--block`, `--disk` (read-only) or `--rwdisk`. */
export interface DiskParameters {
	path: string;
	readOnly: boolean;
}

const DISK_ID_LENGTH = 20;

/** `deserialize_disk_id`: a serde custom error, so the text has no position. */
const DISK_ID: KeyType = {
	kind: 'string',
	check(id) {
		if (Buffer.byteLength(id) > DISK_ID_LENGTH) {
			throw new ValueError(`disk id must be ${DISK_ID_LENGTH} or fewer characters`);
		}
	},
};

/** `DiskOption` of devices/src/virtio/block/block.rs at efdcf90a4. */
const SCHEMA_2022: KeyValueSchema = {
	keys: [
		['path', {kind: 'string'}],
		['ro', {kind: 'bool'}],
		['sparse', {kind: 'bool'}],
		['o_direct', {kind: 'bool'}],
		['block_size', {kind: 'unsigned', bits: 32}],
		['id', DISK_ID],
	],
	required: ['path'],
};

/** `DiskOption` of devices/src/virtio/block/mod.rs at f1e797a68 (Linux and Android builds). */
const SCHEMA_CURRENT: KeyValueSchema = {
	keys: [
		['path', {kind: 'string'}],
		['ro', {kind: 'bool'}],
		['root', {kind: 'bool'}],
		['sparse', {kind: 'bool'}],
		['direct', {kind: 'bool'}],
		['lock', {kind: 'bool'}],
		['block-size', {kind: 'unsigned', bits: 32}],
		['id', DISK_ID],
		['multiple-workers', {kind: 'bool'}],
		['async-executor', {kind: 'enum', variants: ['epoll', 'uring']}],
		['packed-queue', {kind: 'bool'}],
		['bootindex', {kind: 'unsigned', bits: 64}],
		['pci-address', {kind: 'string', check: checkPciAddress}],
		['dontcache', {kind: 'bool'}],
	],
	aliases: {o_direct: 'direct', block_size: 'block-size', async_executor: 'async-executor'},
	required: ['path'],
};

/** A disk value in a build's grammar; `readOnly` overrides its `ro` when given. */
export function parseDisk(text: string, grammar: KeyValueGrammar, readOnly?: boolean): DiskParameters {
	const values = parseKeyValues(text, grammar === '2022' ? SCHEMA_2022 : SCHEMA_CURRENT, grammar);
	return {path: values['path'] as string, readOnly: readOnly ?? values['ro'] === true};
}

/**
 * The parser of `--disk` or `--rwdisk` in a build. `--disk` is always read-only; `--rwdisk` is
 * writable today (src/crosvm/cmdline.rs at f1e797a68) but took its `ro` from the value in 2022
 * (src/main.rs at efdcf90a4 only forced `ro` on for names not starting with `rw`).
 */
export function diskParser(build: SimBuild, writable: boolean): (text: string) => DiskParameters {
	const grammar = build.dialect === 'aosp-2022' ? '2022' : 'current';
	const readOnly = writable ? (grammar === '2022' ? undefined : false) : true;
	return text => parseDisk(text, grammar, readOnly);
}
