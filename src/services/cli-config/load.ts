import {dirname, resolve} from 'node:path';
import {InvalidConfigError} from '../../errors.js';
import {validateConfig} from '../config/validate.js';
import type {FilePolicy} from '../config/file-policy.js';
import type {VmConfig} from '../config/vm-config.js';
import {androidFieldName, fromAndroidConfig, looksAndroid} from './android.js';
import {requireAbsolutePaths, resolvePaths} from './file-fields.js';
import {readJsonFile} from './read.js';
import {fromVmwardenConfig} from './vmwarden.js';

/** The formats a config file may be in: vmwarden's `VmConfig` as JSON, or Android's `vm_config.json`. */
export type ConfigFormat = 'vmwarden' | 'android';

export const CONFIG_FORMATS: readonly ConfigFormat[] = ['vmwarden', 'android'];

export interface LoadConfigOptions {
	/** Default: Android's when the file uses a field only Android's format has, else vmwarden's. */
	format?: ConfigFormat;
	/** The policy `validateConfig` checks the files with. Default `{}`, the strict policy. */
	filePolicy?: FilePolicy;
}

export interface LoadedConfig {
	config: VmConfig;
	format: ConfigFormat;
}

/** The format of a parsed config: Android's when it uses a field only that format has. */
export function detectFormat(json: unknown): ConfigFormat {
	return typeof json === 'object' && json !== null && !Array.isArray(json) && looksAndroid(json as Record<string, unknown>) ? 'android' : 'vmwarden';
}

/**
 * Reads a config file (bounded, see `readJsonFile`) and maps it to a `VmConfig` with its relative
 * paths resolved against the file's directory, without validating it: for a client that hands it
 * to a daemon, which validates it under its own file policy. Throws `ConfigFileError` when the
 * file is no JSON, and `InvalidConfigError` for what only the file's format can get wrong.
 */
export async function parseConfigFile(file: string, format?: ConfigFormat): Promise<LoadedConfig> {
	const json = await readJsonFile(file);
	const chosen = format ?? detectFormat(json);
	try {
		const config = chosen === 'android' ? fromAndroidConfig(json) : fromVmwardenConfig(json);
		resolvePaths(config, dirname(resolve(file)));
		// Unchecked until validateConfig (or the daemon's createVm) checks every field.
		const unchecked: VmConfig = config;
		return {config: unchecked, format: chosen};
	} catch (error) {
		throw inFileTerms(error, chosen);
	}
}

/**
 * `parseConfigFile`, then `validateConfig` under `filePolicy`. Throws `ConfigFileError` when the
 * file is no JSON, and `InvalidConfigError` naming the field as the file spells it (`memory_mib`
 * in an Android file) for a bad config.
 */
export async function loadConfigFile(file: string, options: LoadConfigOptions = {}): Promise<LoadedConfig> {
	const loaded = await parseConfigFile(file, options.format);
	try {
		validateConfig(loaded.config, options.filePolicy);
	} catch (error) {
		throw inFileTerms(error, loaded.format);
	}

	return loaded;
}

/** An `InvalidConfigError` naming the field as an Android file spells it. */
export function inFileTerms(error: unknown, format: ConfigFormat): unknown {
	return format === 'android' && error instanceof InvalidConfigError ? new InvalidConfigError(androidFieldName(error.field), error.reason, {cause: error}) : error;
}

/**
 * A config a client sent to the daemon (parsed JSON, in vmwarden's format), mapped to a `VmConfig`
 * that `createVm` then validates. Relative paths are refused: the client's directory is unknown.
 */
export function configFromRequest(json: unknown): VmConfig {
	const config = fromVmwardenConfig(json);
	requireAbsolutePaths(config);
	// createVm validates every field; until then the config is what the client sent.
	const unchecked: VmConfig = config;
	return unchecked;
}
