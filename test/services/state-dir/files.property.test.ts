import {rmSync, writeFileSync} from 'node:fs';
import {join} from 'node:path';
import fc from 'fast-check';
import {InvalidConfigError} from '../../../src/errors.js';
import {LAST_CID_FILE, readLastCidFile} from '../../../src/services/cids/store.js';
import {ensureStateDir} from '../../../src/services/state-dir/directory.js';
import {claimStateDir, LOCK_FILE, parseLockOwner} from '../../../src/services/state-dir/lock.js';
import {isGuestCid} from '../../../src/services/cids/range.js';
import {checkVmRecord, parseVmRecord} from '../../../src/services/state-dir/records.js';
import {reapStateDir} from '../../../src/services/state-dir/reap.js';
import {useStateDirFixture} from './fixtures/state-dir-fixture.js';

const {makeFolder} = useStateDirFixture();

/** Bytes an attacker could leave: anything, JSON-ish text, or near-records with wrong fields. */
const hostileBytes = fc.oneof(
	fc.uint8Array({maxLength: 5000}),
	fc.string({maxLength: 300}).map(text => Buffer.from(text)),
	fc.record({
		cid: fc.oneof(fc.integer(), fc.double(), fc.string(), fc.constant(2050)),
		pid: fc.oneof(fc.integer(), fc.constant(1), fc.string(), fc.constant(null)),
		startTime: fc.oneof(fc.stringMatching(/^\d{1,25}$/), fc.integer(), fc.string()),
		tempDir: fc.oneof(fc.constantFrom('/tmp/vmwarden-2050-abcdef', '/', 'relative', '/a/../b', '/x\0y'), fc.string()),
		supervisorPid: fc.oneof(fc.integer(), fc.constant(1)),
		token: fc.oneof(fc.stringMatching(/^[0-9a-f]{32}$/), fc.string()),
	}, {requiredKeys: []}).map(value => Buffer.from(JSON.stringify(value))),
);

describe('hostile bytes in the state directory', () => {
	test('as a record: a typed refusal or a record whose every field holds, never a throw, never a signal', async () => {
		const stateDir = makeFolder();
		ensureStateDir(stateDir);
		const signalled: number[] = [];
		await fc.assert(fc.asyncProperty(hostileBytes, async bytes => {
			writeFileSync(join(stateDir, 'vms', '2050.json'), bytes);
			const [report] = await reapStateDir(stateDir, [{cid: 2050, file: '2050.json'}], {
				signal(pid) {
					signalled.push(pid);
				},
			});
			const parsed = parseVmRecord(Buffer.from(bytes).toString('utf8'), 2050);
			expect(report?.cid).toBe(2050);
			if (report?.outcome === 'unreadable') {
				expect(report.reason).toMatch(/^its record 2050\.json /);
				expect(report.cidReleased).toBe(false);
			} else {
				expect(parsed.ok).toBe(true);
			}

			if (parsed.ok) {
				expect(checkVmRecord({...parsed.record})).toEqual(parsed.record);
				expect(parsed.record.cid).toBe(2050);
			}
		}), {numRuns: 300});
		expect(signalled).toEqual([]);
	});

	test('as the last CID file: a guest CID or a reason, never a throw', () => {
		const stateDir = makeFolder();
		fc.assert(fc.property(fc.oneof(hostileBytes, fc.nat().map(value => Buffer.from(`${value}\n`))), bytes => {
			writeFileSync(join(stateDir, LAST_CID_FILE), bytes);
			const read = readLastCidFile(stateDir);
			expect(read.ok ? isGuestCid(read.cid) : typeof read.reason).toBe(read.ok ? true : 'string');
		}), {numRuns: 300});
	});

	test('as the lock file: a lock taken over or a refusal naming stateDir, never anything else', () => {
		const stateDir = makeFolder();
		fc.assert(fc.property(hostileBytes, bytes => {
			rmSync(join(stateDir, LOCK_FILE), {force: true});
			writeFileSync(join(stateDir, LOCK_FILE), bytes);
			const owner = parseLockOwner(Buffer.from(bytes).toString('utf8'));
			try {
				claimStateDir(stateDir)();
				// Only a well-formed lock of a process that is not running is taken over.
				expect(owner).toBeDefined();
			} catch (error) {
				expect(error).toBeInstanceOf(InvalidConfigError);
				expect((error as InvalidConfigError).field).toBe('stateDir');
			}
		}), {numRuns: 300});
	});
});
