import {existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync} from 'node:fs';
import {join} from 'node:path';
import {execa} from 'execa';
import {StateDirError} from '../../../src/errors.js';
import {LAST_CID_FILE, readLastCid, readLastCidFile, writeLastCid} from '../../../src/services/cids/store.js';
import {writeVmRecord} from '../../../src/services/state-dir/records.js';
import {useStateDirFixture} from '../state-dir/fixtures/state-dir-fixture.js';

const {makeFolder} = useStateDirFixture();

describe('the last CID file', () => {
	test('round-trips through a draft and a rename, leaving no draft behind', () => {
		const stateDir = makeFolder();
		expect(readLastCid(stateDir)).toBeUndefined();
		expect(writeLastCid(stateDir, 4096)).toEqual({ok: true});
		expect(writeLastCid(stateDir, 4097)).toEqual({ok: true});
		expect(readLastCid(stateDir)).toBe(4097);
		expect(readdirSync(stateDir)).toEqual([LAST_CID_FILE]);
	});

	test('a damaged, oversized, non-CID or non-file last CID is ignored, with the reason', () => {
		const stateDir = makeFolder();
		const path = join(stateDir, LAST_CID_FILE);
		for (const [content, reason] of [['not a number', /does not hold a guest CID/], ['2', /does not hold a guest CID/], ['4294967295', /does not hold a guest CID/], ['00042', /does not hold a guest CID/], ['1'.repeat(100), /larger than 64 bytes/]] as const) {
			writeFileSync(path, content);
			expect(readLastCidFile(stateDir)).toEqual({ok: false, reason: expect.stringMatching(reason) as string});
			expect(readLastCid(stateDir)).toBeUndefined();
		}

		const other = makeFolder();
		mkdirSync(join(other, LAST_CID_FILE));
		expect(readLastCidFile(other)).toEqual({ok: false, reason: 'last-cid is not a regular file'});
	});

	test('a symbolic link planted at its name is neither read through nor written through', () => {
		const stateDir = makeFolder();
		const target = join(makeFolder(), 'precious');
		writeFileSync(target, '3000\n');
		symlinkSync(target, join(stateDir, LAST_CID_FILE));
		expect(readLastCidFile(stateDir)).toEqual({ok: false, reason: 'last-cid is a symbolic link'});
		expect(writeLastCid(stateDir, 4242)).toEqual({ok: true});
		expect(readFileSync(target, 'utf8')).toBe('3000\n');
		expect(readLastCid(stateDir)).toBe(4242);
	});

	test('a FIFO planted at its name is refused at once, not waited on', async () => {
		const stateDir = makeFolder();
		await execa('mkfifo', [join(stateDir, LAST_CID_FILE)]);
		expect(readLastCidFile(stateDir)).toEqual({ok: false, reason: 'last-cid is not a regular file'});
	});
});

describe('writing to a full or read-only file system', () => {
	test('a full disk or a read-only mount is a result, never a throw; the old content stays, no draft is left', async () => {
		const mountPoint = makeFolder();
		await execa('mount', ['-t', 'tmpfs', '-o', 'size=64k,mode=0700', 'tmpfs', mountPoint]);
		try {
			const stateDir = join(mountPoint, 'state');
			mkdirSync(join(stateDir, 'vms'), {recursive: true, mode: 0o700});
			expect(writeLastCid(stateDir, 2048)).toEqual({ok: true});
			// Fill the file system: a write fails with ENOSPC once it is full.
			await execa('dd', ['if=/dev/zero', `of=${join(mountPoint, 'filler')}`, 'bs=4k'], {reject: false});

			const full = writeLastCid(stateDir, 2049);
			expect(full.ok).toBe(false);
			expect(full.ok ? undefined : full.error).toBeInstanceOf(StateDirError);
			expect(full.ok ? '' : full.error.reason).toMatch(/ENOSPC/);
			const record = writeVmRecord(stateDir, {cid: 2049, pid: 1, startTime: '1', tempDir: '/tmp/vmwarden-2049-abcdef', supervisorPid: 1});
			expect(record.ok ? '' : record.error.reason).toMatch(/ENOSPC/);
			expect(readLastCid(stateDir)).toBe(2048);
			expect(readdirSync(stateDir).sort()).toEqual([LAST_CID_FILE, 'vms']);
			expect(readdirSync(join(stateDir, 'vms'))).toEqual([]);

			await execa('mount', ['-o', 'remount,ro', mountPoint]);
			const readOnly = writeLastCid(stateDir, 2050);
			expect(readOnly.ok ? '' : readOnly.error.reason).toMatch(/EROFS/);
			expect(readLastCid(stateDir)).toBe(2048);
		} finally {
			await execa('umount', [mountPoint]);
		}

		expect(existsSync(join(mountPoint, 'state'))).toBe(false);
	});
});
