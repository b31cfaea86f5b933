import {chmodSync, copyFileSync} from 'node:fs';
import {join} from 'node:path';
import {execa} from 'execa';
import {isProcessRunning, killProcess, readProcessArguments, readProcessEffectiveUid, readProcessStat, readProcessStatAsync, waitForProcessExit} from '../../../src/services/state-dir/process-identity.js';
import {useStateDirFixture} from './fixtures/state-dir-fixture.js';

const {makeFolder, startSleeper, deadPid} = useStateDirFixture();

describe('process identity', () => {
	test('reads the start time of a running process and tells a reused PID apart', async () => {
		const {identity} = startSleeper();
		expect(identity.startTime).toMatch(/^\d+$/);
		const impostor = {pid: identity.pid, startTime: String(Number(identity.startTime) + 1)};
		expect(isProcessRunning(impostor)).toBe(false);
		expect(killProcess(impostor)).toBe('pid-reused');
		expect(isProcessRunning(identity)).toBe(true);
		expect(killProcess(identity)).toBe('signalled');
		expect(await waitForProcessExit(identity, {timeoutMs: 5000})).toBe(true);
		expect(killProcess(identity)).toBe('gone');
	});

	test('parses a command name holding spaces and parentheses, synchronously and not', async () => {
		const odd = join(makeFolder(), 'x) (y z');
		copyFileSync('/bin/sleep', odd);
		chmodSync(odd, 0o755);
		const child = execa(odd, ['600'], {reject: false});
		try {
			const stat = readProcessStat(child.pid!)!;
			expect(stat.parentPid).toBe(process.pid);
			expect(stat.state).toMatch(/^[RSD]$/);
			expect(stat.startTime).toMatch(/^\d+$/);
			// The state may move on between the two reads (a starting sleep goes from R to S).
			const later = await readProcessStatAsync(child.pid!);
			expect(later).toEqual({...stat, state: expect.stringMatching(/^[RSD]$/) as string});
			expect(readProcessStat(0)).toBeUndefined();
			expect(await readProcessStatAsync(-1)).toBeUndefined();
		} finally {
			child.kill('SIGKILL');
			await child;
		}
	});

	test('reads a process\'s arguments and effective uid; nothing for a process that is gone', async () => {
		const {identity} = startSleeper('/some/argv0');
		expect(await readProcessArguments(identity.pid)).toEqual(['/some/argv0', '600']);
		expect(await readProcessEffectiveUid(identity.pid)).toBe(process.geteuid!());
		const gone = await deadPid();
		expect(await readProcessArguments(gone)).toBeUndefined();
		expect(await readProcessEffectiveUid(gone)).toBeUndefined();
	});
});
