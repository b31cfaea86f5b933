import {chownSync, existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync} from 'node:fs';
import {join, resolve} from 'node:path';
import {execa} from 'execa';
import {isProcessRunning, processIdentity} from '../../../src/services/state-dir/process-identity.js';
import {listStaleVms, readVmRecords, writeVmRecord, type VmRecord} from '../../../src/services/state-dir/records.js';
import {reapStaleVms, reapStateDir, type StaleVmReport} from '../../../src/services/state-dir/reap.js';
import {createTempDir, TEMP_DIR_MARKER} from '../../../src/services/vmm/temp-dir.js';
import {crosvmDriver} from '../../../src/services/crosvm/driver.js';
import {qemuDriver} from '../../../src/services/qemu/driver.js';
import {useStateDirFixture} from './fixtures/state-dir-fixture.js';

const {makeFolder, startSleeper, startVmmLike, deadPid} = useStateDirFixture();

function record(cid: number, pid: number, startTime: string, tempDir: string): VmRecord {
	return {cid, pid, startTime, tempDir, supervisorPid: process.pid};
}

async function reap(stateDir: string, options: Parameters<typeof reapStateDir>[2] = {}): Promise<StaleVmReport[]> {
	return reapStateDir(stateDir, listStaleVms(stateDir).entries, options);
}

describe('reaping a previous instance\'s VMs', () => {
	test('a VMM that provably is the recorded one is killed; its temp dir and record are removed; its CID is free', async () => {
		const stateDir = makeFolder();
		const vmm = await startVmmLike(makeFolder(), 2050);
		expect(writeVmRecord(stateDir, record(2050, vmm.identity.pid, vmm.identity.startTime, vmm.tempDir))).toEqual({ok: true});

		const reports = await reap(stateDir);

		expect(reports).toEqual([{cid: 2050, pid: vmm.identity.pid, tempDir: vmm.tempDir, outcome: 'killed', tempDirRemoved: true, cidReleased: true, reason: 'still running: killed'}]);
		expect(isProcessRunning(vmm.identity)).toBe(false);
		expect(existsSync(vmm.tempDir)).toBe(false);
		expect(readdirSync(join(stateDir, 'vms'))).toEqual([]);
	});

	test('a forged record naming an unrelated live process (with its real start time) never gets it killed', async () => {
		const stateDir = makeFolder();
		const tempRoot = makeFolder();
		// Our own temp dir, even: the process's command line does not name it.
		const tempDir = await createTempDir(tempRoot, 2051);
		const unrelated = startSleeper();
		writeVmRecord(stateDir, record(2051, unrelated.identity.pid, unrelated.identity.startTime, tempDir));
		// A process that names a temp dir, but one the record's name pattern does not allow.
		const named = startSleeper(join(tempRoot, 'not-ours', 'crosvm.sock'));
		writeVmRecord(stateDir, record(2052, named.identity.pid, named.identity.startTime, join(tempRoot, 'not-ours')));

		const reports = await reap(stateDir);

		expect(reports).toEqual([
			expect.objectContaining({cid: 2051, outcome: 'refused', cidReleased: false, tempDirRemoved: false, reason: expect.stringMatching(/command line does not name the recorded temporary directory/) as string}),
			expect.objectContaining({cid: 2052, outcome: 'refused', cidReleased: false, reason: expect.stringMatching(/temporary directory is not one vmwarden names/) as string}),
		]);
		expect(isProcessRunning(unrelated.identity)).toBe(true);
		expect(isProcessRunning(named.identity)).toBe(true);
		expect(existsSync(join(tempDir, TEMP_DIR_MARKER))).toBe(true);
		// The records stay, for an operator, and hold their CIDs for the next supervisor as well.
		expect(readdirSync(join(stateDir, 'vms')).sort()).toEqual(['2051.json', '2052.json']);
	});

	test('a directory vmwarden did not create is never removed, whatever the record says', async () => {
		const stateDir = makeFolder();
		const tempRoot = makeFolder();
		const pid = await deadPid();
		const precious = join(tempRoot, 'precious');
		const unmarked = join(tempRoot, 'vmwarden-3001-abcdef');
		const otherCid = await createTempDir(tempRoot, 3999);
		const linkTarget = await createTempDir(tempRoot, 3003);
		const linked = join(tempRoot, 'vmwarden-3003-linked');
		for (const folder of [precious, unmarked]) {
			mkdirSync(folder);
			writeFileSync(join(folder, 'data'), 'keep\n');
		}

		// A marker copied from another VM's directory names that VM, not this one.
		const copied = join(tempRoot, 'vmwarden-3002-abcdef');
		mkdirSync(copied, {mode: 0o700});
		writeFileSync(join(copied, TEMP_DIR_MARKER), readFileSync(join(otherCid, TEMP_DIR_MARKER)));
		symlinkSync(linkTarget, linked);
		writeVmRecord(stateDir, record(3000, pid, '1', precious));
		writeVmRecord(stateDir, record(3001, pid, '1', unmarked));
		writeVmRecord(stateDir, record(3002, pid, '1', copied));
		writeVmRecord(stateDir, record(3003, pid, '1', linked));
		writeVmRecord(stateDir, record(3004, pid, '1', '/etc'));

		const reports = await reap(stateDir);

		expect(reports.map(({cid, outcome, cidReleased, tempDirRemoved}) => ({cid, outcome, cidReleased, tempDirRemoved}))).toEqual([
			{cid: 3000, outcome: 'gone', cidReleased: true, tempDirRemoved: false},
			{cid: 3001, outcome: 'gone', cidReleased: true, tempDirRemoved: false},
			{cid: 3002, outcome: 'gone', cidReleased: true, tempDirRemoved: false},
			{cid: 3003, outcome: 'gone', cidReleased: true, tempDirRemoved: false},
			{cid: 3004, outcome: 'gone', cidReleased: true, tempDirRemoved: false},
		]);
		expect(reports[1]!.reason).toMatch(/left alone: its marker \.vmwarden-temp-dir does not exist/);
		expect(reports[2]!.reason).toMatch(/left alone: its marker \.vmwarden-temp-dir names another VM/);
		expect(reports[3]!.reason).toMatch(/left alone: is a symbolic link/);
		expect(reports[4]!.reason).toMatch(/left alone: its name is not one vmwarden gives/);
		expect(existsSync(join(copied, TEMP_DIR_MARKER))).toBe(true);
		for (const folder of [precious, unmarked]) {
			expect(readFileSync(join(folder, 'data'), 'utf8')).toBe('keep\n');
		}

		expect(existsSync(join(otherCid, TEMP_DIR_MARKER))).toBe(true);
		expect(existsSync(join(linkTarget, TEMP_DIR_MARKER))).toBe(true);
		expect(existsSync('/etc/passwd')).toBe(true);
	});

	test('one unsignalable, one unreadable record never stop the rest: every record gets its own report', async () => {
		const stateDir = makeFolder();
		const tempRoot = makeFolder();
		const good = [await startVmmLike(tempRoot, 4000), await startVmmLike(tempRoot, 4002)];
		const denied = await startVmmLike(tempRoot, 4001);
		for (const [cid, vmm] of [[4000, good[0]!], [4001, denied], [4002, good[1]!]] as const) {
			writeVmRecord(stateDir, record(cid, vmm.identity.pid, vmm.identity.startTime, vmm.tempDir));
		}

		const vms = join(stateDir, 'vms');
		writeFileSync(join(vms, '4003.json'), '{"cid": 4003, "pid": "1"}');
		symlinkSync('/etc/passwd', join(vms, '4004.json'));
		await execa('mkfifo', [join(vms, '4005.json')]);
		writeFileSync(join(vms, '4006.json'), `${' '.repeat(5000)}{}`);
		mkdirSync(join(vms, '4007.json'));
		writeFileSync(join(vms, '4008.json'), JSON.stringify(record(4009, 1, '1', '/tmp/vmwarden-4009-abcdef')));

		// As root every signal is allowed: EPERM comes from a kill function standing in for kill(2).
		const signal = (pid: number, name: NodeJS.Signals) => {
			if (pid === denied.identity.pid) {
				throw Object.assign(new Error('kill EPERM'), {code: 'EPERM'});
			}

			process.kill(pid, name);
		};

		const reports = await reap(stateDir, {signal});

		expect(reports.map(({cid, outcome, cidReleased}) => ({cid, outcome, cidReleased}))).toEqual([
			{cid: 4000, outcome: 'killed', cidReleased: true},
			{cid: 4001, outcome: 'refused', cidReleased: false},
			{cid: 4002, outcome: 'killed', cidReleased: true},
			...[4003, 4004, 4005, 4006, 4007, 4008].map(cid => ({cid, outcome: 'unreadable', cidReleased: false})),
		]);
		expect(reports.slice(1, 2).concat(reports.slice(3)).map(report => report.reason)).toEqual([
			expect.stringMatching(/cannot be signalled \(EPERM\)/),
			expect.stringMatching(/pid is not a PID/),
			expect.stringMatching(/is a symbolic link/),
			expect.stringMatching(/is not a regular file/),
			expect.stringMatching(/is larger than 4096 bytes/),
			expect.stringMatching(/is not a regular file/),
			expect.stringMatching(/cid 4009 is not the CID of its file name/),
		]);
		expect(good.map(vm => isProcessRunning(vm.identity))).toEqual([false, false]);
		expect(isProcessRunning(denied.identity)).toBe(true);
		expect(existsSync(denied.tempDir)).toBe(true);
		expect(readdirSync(vms).sort()).toEqual(['4001.json', '4003.json', '4004.json', '4005.json', '4006.json', '4007.json', '4008.json']);
		expect(readFileSync('/etc/passwd', 'utf8')).toMatch(/^root:/);
	});

	test('the event loop keeps turning while hundreds of records are reaped', async () => {
		const stateDir = makeFolder();
		const tempRoot = makeFolder();
		const pid = await deadPid();
		for (let cid = 5000; cid < 5150; cid++) {
			writeVmRecord(stateDir, record(cid, pid, '1', await createTempDir(tempRoot, cid)));
		}

		let turns = 0;
		const ticker = setInterval(() => {
			turns++;
		}, 0);
		const reports = await reap(stateDir);
		clearInterval(ticker);

		expect(reports).toHaveLength(150);
		expect(reports.every(report => report.outcome === 'gone' && report.tempDirRemoved)).toBe(true);
		expect(readdirSync(tempRoot)).toEqual([]);
		// Read, examined and removed asynchronously: timers ran in between, many times.
		expect(turns).toBeGreaterThan(10);
	});

	test('reapStaleVms (records already read) returns only the VMs whose CID is free again', async () => {
		const stateDir = makeFolder();
		const vmm = await startVmmLike(makeFolder(), 6000);
		const unrelated = startSleeper();
		writeVmRecord(stateDir, record(6000, vmm.identity.pid, vmm.identity.startTime, vmm.tempDir));
		writeVmRecord(stateDir, record(6001, unrelated.identity.pid, unrelated.identity.startTime, vmm.tempDir.replace('vmwarden-6000-', 'vmwarden-6001-')));

		const reaped = await reapStaleVms(stateDir, readVmRecords(stateDir));

		expect(reaped).toEqual([expect.objectContaining({cid: 6000, outcome: 'killed', tempDirRemoved: true})]);
		expect(reaped[0]).not.toHaveProperty('cidReleased');
		expect(processIdentity(unrelated.identity.pid)).toEqual(unrelated.identity);
	});

	test('every driver\'s command line names the VM\'s temporary directory, the reaper\'s proof of a VMM', () => {
		const tempDir = '/run/vmw/vmwarden-2050-abcdef';
		for (const driver of [crosvmDriver, qemuDriver]) {
			// As the VM machine calls it: the control socket inside the temporary directory.
			const {args} = driver.command({kernel: '/boot/vmlinuz'}, {cid: 2050, tempDir, controlSocket: join(tempDir, `${driver.name}.sock`), payloadChannel: false});
			expect(args.some(argument => argument.includes(`${tempDir}/`))).toBe(true);
		}
	});

	test('a real EPERM (a VMM of ours another uid still holds) leaves that one held and reaps the others', async () => {
		// The reaper runs as `nobody`; one VMM runs as `nobody`, the other only with `nobody` as its
		// effective uid (its real and saved uid stay root), so nobody may not signal it.
		const nobody = 65_534;
		const base = makeFolder();
		const stateDir = join(base, 'state');
		const tempRoot = join(base, 'tmp');
		mkdirSync(join(stateDir, 'vms'), {recursive: true, mode: 0o700});
		mkdirSync(tempRoot, {mode: 0o700});
		const ownedByNobody = (tempDir: string) => {
			chownSync(tempDir, nobody, nobody);
			chownSync(join(tempDir, TEMP_DIR_MARKER), nobody, nobody);
			return tempDir;
		};

		const killableDir = ownedByNobody(await createTempDir(tempRoot, 7000));
		const deniedDir = ownedByNobody(await createTempDir(tempRoot, 7001));
		const killable = execa('sleep', ['600'], {reject: false, uid: nobody, gid: nobody, argv0: join(killableDir, 'crosvm.sock')});
		const denied = execa(process.execPath, ['-e', `process.seteuid(${nobody}); process.stdout.write('ready\\n'); setInterval(() => undefined, 1e9);`, join(deniedDir, 'crosvm.sock')], {reject: false, buffer: false, stdout: 'pipe'});
		try {
			await new Promise(resolve => {
				denied.stdout.once('data', resolve);
			});
			const identities = [processIdentity(killable.pid!)!, processIdentity(denied.pid!)!];
			writeVmRecord(stateDir, record(7000, identities[0]!.pid, identities[0]!.startTime, killableDir));
			writeVmRecord(stateDir, record(7001, identities[1]!.pid, identities[1]!.startTime, deniedDir));
			for (const path of [base, stateDir, join(stateDir, 'vms'), join(stateDir, 'vms', '7000.json'), join(stateDir, 'vms', '7001.json'), tempRoot]) {
				chownSync(path, nobody, nobody);
			}

			const reaper = await execa(process.execPath, ['--import', 'tsx', resolve('test/services/state-dir/fixtures/reap-as-user.ts'), stateDir], {uid: nobody, gid: nobody});
			const reports = JSON.parse(reaper.stdout) as StaleVmReport[];

			expect(reports.map(({cid, outcome, cidReleased, tempDirRemoved}) => ({cid, outcome, cidReleased, tempDirRemoved}))).toEqual([
				{cid: 7000, outcome: 'killed', cidReleased: true, tempDirRemoved: true},
				{cid: 7001, outcome: 'refused', cidReleased: false, tempDirRemoved: false},
			]);
			expect(reports[1]!.reason).toMatch(/cannot be signalled \(EPERM\)/);
			expect(isProcessRunning(identities[0]!)).toBe(false);
			expect(isProcessRunning(identities[1]!)).toBe(true);
			expect(existsSync(deniedDir)).toBe(true);
			expect(readdirSync(join(stateDir, 'vms'))).toEqual(['7001.json']);
		} finally {
			for (const child of [killable, denied]) {
				child.kill('SIGKILL');
				await child;
			}
		}
	}, 30_000);
});
