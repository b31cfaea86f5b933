/**
 * Who gets the CPU: a spawner process leads a session whose autogroup yields to the host's, and
 * each VMM and each short command it starts leads a session (and an autogroup at nice 0) of its own.
 */
import {existsSync, readFileSync} from 'node:fs';
import path from 'node:path';
import {execa} from 'execa';
import {SPAWNER_AUTOGROUP_NICE, SPAWNER_FLEET_NICE, SpawnerPool, type SpawnedChild} from '../../../../src/services/vmm/spawn/spawner.js';
import {readProcessStat} from '../../../../src/services/state-dir/process-identity.js';
import {until} from '../../../helpers/until.js';
import {defaultVmmEnvironment} from '../../../../src/services/vmm/vmm-environment.js';

/** The session of a process from the text of its /proc stat file (the fourth field after the name). */
function sessionIn(stat: string): number {
	return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[3]);
}

/** The pid a /proc stat file's text is of (its first field). */
const pidIn = (stat: string) => Number(stat.split(' ')[0]);

const sessionOf = (pid: number) => sessionIn(readFileSync(`/proc/${pid}/stat`, 'utf8'));
/** `/autogroup-N nice V` as Linux prints it, without the group's number. */
const autogroupNiceOf = (pid: number) => /nice (-?\d+)$/.exec(readFileSync(`/proc/${pid}/autogroup`, 'utf8').trim())?.[1];

describe('spawner sessions', () => {
	test('a VMM and a command each lead a session of their own; the spawner leads another, not the host\'s', async () => {
		const pool = new SpawnerPool();
		const child = await pool.spawn('sleep', ['30'], defaultVmmEnvironment(), ['ignore', 'ignore', 'ignore'], []);
		try {
			const spawnerPid = readProcessStat(child.pid)!.parentPid;
			const result = await pool.run('sh', ['-c', 'cat "/proc/$$/stat" >&2'], {env: defaultVmmEnvironment(), timeoutMs: 5000, maxOutputBytes: 4096});
			expect({
				vmm: sessionOf(child.pid) === child.pid,
				spawner: sessionOf(spawnerPid) === spawnerPid,
				command: sessionIn(result.stderr) === pidIn(result.stderr),
			}).toEqual({vmm: true, spawner: true, command: true});
			// Three different sessions: the host's is neither the spawner's nor the VMM's.
			expect(new Set([sessionOf(process.pid), spawnerPid, child.pid]).size).toBe(3);
		} finally {
			child.kill('SIGKILL');
			await child.exited;
			await pool.closeIdle();
		}
	});

	// Where the kernel has autogroups (this machine's has): elsewhere there is nothing to check.
	(existsSync('/proc/self/autogroup') ? test : test.skip)('the spawner\'s autogroup is at the spawner\'s nice value, a VMM\'s at 0', async () => {
		const pool = new SpawnerPool();
		const child = await pool.spawn('sleep', ['30'], defaultVmmEnvironment(), ['ignore', 'ignore', 'ignore'], []);
		try {
			const spawnerPid = readProcessStat(child.pid)!.parentPid;
			// The spawner may have had to wait for the kernel's 100 ms between two autogroup writes.
			await until(() => autogroupNiceOf(spawnerPid) === String(SPAWNER_AUTOGROUP_NICE), 3000);
			expect({spawner: autogroupNiceOf(spawnerPid), vmm: autogroupNiceOf(child.pid)}).toEqual({spawner: String(SPAWNER_AUTOGROUP_NICE), vmm: '0'});
			expect(SPAWNER_AUTOGROUP_NICE).toBeGreaterThan(0);
		} finally {
			child.kill('SIGKILL');
			await child.exited;
			await pool.closeIdle();
		}
	});

	(existsSync('/proc/self/autogroup') ? test : test.skip)('a spawner holding a fleet weighs less, and as before once it holds fewer than half of one', async () => {
		const pool = new SpawnerPool(undefined, undefined, undefined, {nice: 5, fleetNice: 10, fleetAt: 4});
		const sleep = async () => pool.spawn('sleep', ['30'], defaultVmmEnvironment(), ['ignore', 'ignore', 'ignore'], []);
		const children: SpawnedChild[] = [];
		try {
			children.push(await sleep(), await sleep(), await sleep());
			const spawnerPid = readProcessStat(children[0]!.pid)!.parentPid;
			await until(() => autogroupNiceOf(spawnerPid) === '5', 3000);
			children.push(await sleep());
			await until(() => autogroupNiceOf(spawnerPid) === '10', 3000);
			// Two left: not fewer than half of a fleet, so still a fleet's weight; one left: back to 5.
			for (const child of children.splice(2)) {
				child.kill('SIGKILL');
				await child.exited;
			}

			await new Promise(resolve => {
				setTimeout(resolve, 300);
			});
			expect(autogroupNiceOf(spawnerPid)).toBe('10');
			const third = children.pop()!;
			third.kill('SIGKILL');
			await third.exited;
			await until(() => autogroupNiceOf(spawnerPid) === '5', 3000);
			// Its VMMs never had its weight.
			expect(autogroupNiceOf(children[0]!.pid)).toBe('0');
		} finally {
			for (const child of children) {
				child.kill('SIGKILL');
			}

			await Promise.all(children.map(async child => child.exited));
			await pool.closeIdle();
		}
	});

	(existsSync('/proc/self/autogroup') ? test : test.skip)('spawns that fail leave the spawner\'s weight as its load', async () => {
		const pool = new SpawnerPool(undefined, undefined, undefined, {nice: 5, fleetNice: 10, fleetAt: 3});
		const child = await pool.spawn('sleep', ['30'], defaultVmmEnvironment(), ['ignore', 'ignore', 'ignore'], []);
		try {
			const spawnerPid = readProcessStat(child.pid)!.parentPid;
			await until(() => autogroupNiceOf(spawnerPid) === '5', 3000);
			// Asked for in one burst, some wait while others are tried: with the child, a fleet's load.
			const failing = async () => pool.spawn('/nonexistent/vmm', [], defaultVmmEnvironment(), ['ignore', 'ignore', 'ignore'], []);
			const results = await Promise.allSettled(Array.from({length: 8}, failing));
			expect(results.every(result => result.status === 'rejected')).toBe(true);
			// Then only the child is left: back to the weight of a few.
			await until(() => autogroupNiceOf(spawnerPid) === '5', 3000);
		} finally {
			child.kill('SIGKILL');
			await child.exited;
			await pool.closeIdle();
		}
	});

	(existsSync('/proc/self/autogroup') ? test : test.skip)('the spawner of a fleet\'s burst of commands weighs as a fleet\'s', async () => {
		// Commands go apart from the first child on, once two run at once.
		const pool = new SpawnerPool(10, {children: 1, burst: 2});
		const child = await pool.spawn('sleep', ['30'], defaultVmmEnvironment(), ['ignore', 'ignore', 'ignore'], []);
		try {
			// Each prints the spawner that runs it and that spawner's autogroup, read while it still runs
			// (and after the spawner's own retries, where Linux takes one autogroup write per 100 ms).
			const command = async () => pool.run('sh', ['-c', 'sleep 1.5; echo "$PPID $(cat "/proc/$PPID/autogroup")" >&2'], {env: defaultVmmEnvironment(), timeoutMs: 10_000, maxOutputBytes: 200});
			const results = await Promise.all([command(), command(), command()]);
			const vmmSpawner = readProcessStat(child.pid)!.parentPid;
			const apart = results.map(result => result.stderr.trim()).filter(line => Number(line.split(' ')[0]) !== vmmSpawner);
			expect(apart.length).toBe(1);
			expect(/nice (-?\d+)$/.exec(apart[0]!)?.[1]).toBe(String(SPAWNER_FLEET_NICE));
		} finally {
			child.kill('SIGKILL');
			await child.exited;
			await pool.closeIdle();
		}
	});

	test('a command that timed out is ended with what it started: a grandchild holding its stderr open', async () => {
		const pool = new SpawnerPool();
		try {
			// The grandchild prints its pid and keeps the command's stderr open for 30 s.
			const started = Date.now();
			// A timeout long enough for sh to start the sleep and print its pid on a loaded machine.
			const result = await pool.run('sh', ['-c', 'sleep 30 & echo "$!" >&2; wait'], {env: defaultVmmEnvironment(), timeoutMs: 2000, maxOutputBytes: 4096});
			const grandchild = Number(result.stderr.trim());
			expect({timedOut: result.timedOut, grandchild: Number.isInteger(grandchild) && grandchild > 0}).toEqual({timedOut: true, grandchild: true});
			// Generous: without the group's signal the command closes only when the sleep ends (30 s).
			expect(Date.now() - started).toBeLessThan(10_000);
			await until(() => {
				try {
					return readProcessStat(grandchild)?.state === undefined || readProcessStat(grandchild)?.state === 'Z';
				} catch {
					return true;
				}
			}, 3000);
		} finally {
			await pool.closeIdle();
		}
	}, 20_000);

	// As a host that is not root (setpriv), where Linux takes one autogroup write per 100 ms on the
	// whole machine: two spawners started together both end at the spawner's nice value.
	(existsSync('/proc/self/autogroup') && process.geteuid?.() === 0 ? test : test.skip)('two spawners of an unprivileged host both lower their sessions\' weight (the second one retries)', async () => {
		const host = execa('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--', process.execPath, '--import', 'tsx', path.resolve('test/helpers/hosts/spawner-weight-host.ts')], {reject: false, stdin: 'pipe', stderr: 'inherit'});
		try {
			const line = await new Promise<string>((resolve, reject) => {
				host.stdout.once('data', (chunk: Buffer) => {
					resolve(String(chunk));
				});
				host.once('exit', () => {
					reject(new Error('the host ended before it printed its spawners'));
				});
			});
			const {children} = JSON.parse(line) as {children: number[]};
			const spawners = children.map(child => readProcessStat(child)!.parentPid);
			expect(new Set(spawners).size).toBe(2);
			await until(() => spawners.every(spawner => autogroupNiceOf(spawner) === String(SPAWNER_AUTOGROUP_NICE)), 5000);
		} finally {
			host.stdin.end();
			await host;
		}
	}, 30_000);
});

