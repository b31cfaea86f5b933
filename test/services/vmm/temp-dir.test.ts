import {mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {afterEach, beforeEach, describe, expect, test} from '@jest/globals';
import {closeIdleSpawner} from '../../../src/services/vmm/spawn/spawner.js';
import {createTempDir, isTempDirName, planTempDir, removeTempDir, TEMP_DIR_MARKER} from '../../../src/services/vmm/temp-dir.js';
import {settleLeaks, takeSnapshot} from '../../helpers/leak-checker.js';
import {silentLogger} from '../../helpers/vm-fixture.js';

describe('the temporary directory', () => {
	let root: string;

	beforeEach(() => {
		root = mkdtempSync(path.join(os.tmpdir(), 'vmw-temp-dir-'));
	});

	afterEach(async () => {
		rmSync(root, {recursive: true, force: true});
		await closeIdleSpawner();
	});

	test('a planned name is one createTempDir gives, drawn afresh each time, under the root', () => {
		const first = planTempDir(root, 7);
		const second = planTempDir(root, 7);
		expect(isTempDirName(first.path, 7)).toBe(true);
		expect(isTempDirName(first.path, 8)).toBe(false);
		expect(path.dirname(first.path)).toBe(root);
		expect(second.path).not.toBe(first.path);
		expect(first).toMatchObject({markerName: TEMP_DIR_MARKER, markerText: expect.stringContaining('CID 7')});
	});

	test('removal: the directory and everything in it is gone when it resolves, a link inside removed, not followed', async () => {
		const directory = await createTempDir(root, 9);
		expect(statSync(directory).mode & 0o777).toBe(0o700);
		mkdirSync(path.join(directory, 'deep'));
		writeFileSync(path.join(directory, 'deep', 'file'), 'x');
		const outside = path.join(root, 'outside');
		writeFileSync(outside, 'not the VM\'s');
		symlinkSync(outside, path.join(directory, 'link'));
		expect(await removeTempDir(directory, silentLogger())).toBe(true);
		expect(readdirSync(root)).toEqual(['outside']);
	});

	test('a directory that cannot be made fails with its reason, and the spawner still goes once idle', async () => {
		await closeIdleSpawner();
		const before = takeSnapshot();
		await expect(createTempDir(path.join(root, 'missing'), 12)).rejects.toMatchObject({code: 'ENOENT'});
		expect(await settleLeaks(before, [], 3000)).toEqual([]);
	});

	test('removal of a directory that is not there resolves as removed', async () => {
		expect(await removeTempDir(path.join(root, 'vmwarden-11-abcdef'), silentLogger())).toBe(true);
		expect(readdirSync(root)).toEqual([]);
	});
});
