import {chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {execa, type ResultPromise} from 'execa';
import {InvalidConfigError} from '../../../src/errors.js';
import {readLastCid, writeLastCid} from '../../../src/services/cids/store.js';
import {isProcessRunning, killProcess, processIdentity, readProcessStat, waitForProcessExit} from '../../../src/services/state-dir/process-identity.js';
import {claimStateDir, readVmRecords, reapStaleVms, writeVmRecord, LOCK_FILE} from '../../../src/services/state-dir/stale-vms.js';

const children: ResultPromise[] = [];
const folders: string[] = [];

function startSleeper(): {pid: number; child: ResultPromise} {
	const child = execa('sleep', ['600'], {reject: false});
	children.push(child);
	return {pid: child.pid!, child};
}

function makeFolder(): string {
	const folder = mkdtempSync(join(tmpdir(), 'vmwarden-supervisor-test-'));
	folders.push(folder);
	return folder;
}

afterEach(async () => {
	for (const child of children.splice(0)) {
		child.kill('SIGKILL');
		await child;
	}

	for (const folder of folders.splice(0)) {
		rmSync(folder, {recursive: true, force: true});
	}
});

describe('process identity', () => {
	test('reads the start time of a running process and tells a reused PID apart', async () => {
		const {pid} = startSleeper();
		const identity = processIdentity(pid)!;
		expect(identity.pid).toBe(pid);
		expect(identity.startTime).toMatch(/^\d+$/);
		const impostor = {pid, startTime: String(Number(identity.startTime) + 1)};
		expect(isProcessRunning(impostor)).toBe(false);
		expect(killProcess(impostor)).toBe('pid-reused');
		expect(isProcessRunning(identity)).toBe(true);
		expect(killProcess(identity)).toBe('signalled');
		expect(await waitForProcessExit(identity, {timeoutMs: 5000})).toBe(true);
		expect(killProcess(identity)).toBe('gone');
	});

	test('parses a command name holding spaces and parentheses', async () => {
		const odd = join(makeFolder(), 'x) (y z');
		copyFileSync('/bin/sleep', odd);
		chmodSync(odd, 0o755);
		const child = execa(odd, ['600'], {reject: false});
		children.push(child);
		const stat = readProcessStat(child.pid!)!;
		expect(stat.parentPid).toBe(process.pid);
		expect(stat.state).toMatch(/^[RSD]$/);
		expect(stat.startTime).toMatch(/^\d+$/);
		expect(readProcessStat(0)).toBeUndefined();
	});
});

describe('last CID store', () => {
	test('round-trips atomically and leaves no temporary file', () => {
		const stateDir = makeFolder();
		expect(readLastCid(stateDir)).toBeUndefined();
		writeLastCid(stateDir, 4096);
		writeLastCid(stateDir, 4097);
		expect(readLastCid(stateDir)).toBe(4097);
		expect(readdirSync(stateDir)).toEqual(['last-cid']);
	});

	test('ignores a damaged file', () => {
		const stateDir = makeFolder();
		writeFileSync(join(stateDir, 'last-cid'), 'not a number');
		expect(readLastCid(stateDir)).toBeUndefined();
	});
});

describe('stale VMs', () => {
	test('kills a recorded VM that still runs, removes its temp dir and record', async () => {
		const stateDir = makeFolder();
		const tempDir = join(makeFolder(), 'vm-2050');
		mkdirSync(tempDir);
		writeFileSync(join(tempDir, 'crosvm.sock'), '');
		const {pid} = startSleeper();
		const {startTime} = processIdentity(pid)!;
		writeVmRecord(stateDir, {cid: 2050, pid, startTime, tempDir, supervisorPid: 1});

		const reaped = await reapStaleVms(stateDir, readVmRecords(stateDir));

		expect(reaped).toEqual([{cid: 2050, pid, tempDir, outcome: 'killed', tempDirRemoved: true}]);
		expect(isProcessRunning({pid, startTime})).toBe(false);
		expect(existsSync(tempDir)).toBe(false);
		expect(readVmRecords(stateDir)).toEqual([]);
	});

	test('never kills a live process whose PID matches a record but whose start time differs', async () => {
		const stateDir = makeFolder();
		const {pid} = startSleeper();
		const identity = processIdentity(pid)!;
		const tempDir = join(makeFolder(), 'vm-2051');
		mkdirSync(tempDir);
		writeVmRecord(stateDir, {cid: 2051, pid, startTime: String(Number(identity.startTime) - 7), tempDir, supervisorPid: 1});

		const reaped = await reapStaleVms(stateDir, readVmRecords(stateDir));

		expect(reaped[0]?.outcome).toBe('pid-reused');
		expect(isProcessRunning(identity)).toBe(true);
		expect(existsSync(tempDir)).toBe(false);
	});

	test('a record whose process is gone is cleaned up; damaged records are dropped', async () => {
		const stateDir = makeFolder();
		const finished = execa('true');
		await finished;
		writeVmRecord(stateDir, {cid: 3000, pid: finished.pid!, startTime: '1', tempDir: join(makeFolder(), 'gone'), supervisorPid: 1});
		writeFileSync(join(stateDir, 'vms', '3001.json'), '{"cid": 3001, "pid": "1"}');
		writeFileSync(join(stateDir, 'vms', '3002.json.123.tmp'), '');

		const records = readVmRecords(stateDir);
		expect(records.map(record => record.cid)).toEqual([3000]);
		const reaped = await reapStaleVms(stateDir, records);
		expect(reaped[0]).toMatchObject({cid: 3000, outcome: 'gone'});
		expect(readdirSync(join(stateDir, 'vms'))).toEqual([]);
	});
});

describe('state directory lock', () => {
	test('a second live owner is refused; a dead owner\'s lock is taken over', async () => {
		const stateDir = makeFolder();
		const release = claimStateDir(stateDir);
		expect(() => claimStateDir(stateDir)).toThrow(expect.objectContaining({field: 'stateDir', constructor: InvalidConfigError}) as unknown as Error);

		release();
		expect(existsSync(join(stateDir, LOCK_FILE))).toBe(false);

		const finished = execa('true');
		await finished;
		writeFileSync(join(stateDir, LOCK_FILE), JSON.stringify({pid: finished.pid, startTime: '1'}));
		const releaseAgain = claimStateDir(stateDir);
		expect(JSON.parse(readFileSync(join(stateDir, LOCK_FILE), 'utf8'))).toEqual(processIdentity(process.pid));
		releaseAgain();
	});
});
