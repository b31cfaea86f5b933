/**
 * A spawner steps aside for a host that waits for a CPU: before each spawn it reads how long the
 * host's main thread has waited (its schedstat), and holds the next spawn back when that grew. Short
 * commands never wait. Here the schedstat is a file the test writes, so the host's waiting is
 * whatever the test says.
 */
import type {ChildProcess} from 'node:child_process';
import {existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {SpawnerPool, spawnerYield, type SpawnerYield} from '../../../../src/services/vmm/spawn/spawner.js';
import {readProcessStat} from '../../../../src/services/state-dir/process-identity.js';
import {defaultVmmEnvironment} from '../../../../src/services/vmm/vmm-environment.js';
import type {FromSpawner, ToSpawner} from '../../../../src/services/vmm/spawn/protocol.js';
import {startSpawnerProgram} from './spawner-program.js';

/** How long the held-back ones wait at least; the others take a small part of it. */
const PAUSE_MS = 1500;

interface Answer {
	/** `spawned` (with the child's pid), `failed` or `ran`. */
	op: string;
	pid?: number;
	/** A command's end. */
	code?: number | null;
	signal?: string | null;
	/** Milliseconds from the request to the answer. */
	ms: number;
}

describe('a spawner that yields to a waiting host', () => {
	let work: string;
	let schedstat: string;
	let waitedMs = 0;
	let spawner: ChildProcess | undefined;
	const answers = new Map<number, (answer: Answer) => void>();
	let nextId = 1;

	/** The host's total wait for a CPU, as its schedstat says: "run wait slices" in nanoseconds. */
	const hostWaited = (ms: number) => {
		waitedMs = ms;
		// In place (the spawner keeps it open) and at one width, so it is never truncated: a reader
		// never sees it half written, as with Linux's own.
		writeFileSync(schedstat, `123456789 ${String(ms * 1e6).padStart(18, '0')} 42\n`, {flag: existsSync(schedstat) ? 'r+' : 'w'});
	};

	/** Settings with looks recent for long, so that a late timer on a loaded machine breaks no chain of pauses. */
	const start = async ({recentMs = 60_000, ...settings}: Omit<SpawnerYield, 'schedstat' | 'recentMs'> & {recentMs?: number}) => {
		const child = await startSpawnerProgram(['0', JSON.stringify({...settings, recentMs, schedstat})], 'inherit');
		spawner = child;
		child.on('message', (message: FromSpawner) => {
			if (message.op === 'spawned' || message.op === 'failed' || message.op === 'ran') {
				answers.get(message.id)?.({
					op: message.op,
					pid: message.op === 'spawned' ? message.pid : undefined,
					...(message.op === 'ran' ? {code: message.code, signal: message.signal} : {}),
					ms: 0,
				});
			}
		});
	};

	const request = async (message: ToSpawner): Promise<Answer> => {
		const sent = performance.now();
		const answered = new Promise<Answer>(resolve => {
			answers.set(message.id, answer => {
				resolve({...answer, ms: performance.now() - sent});
			});
		});
		spawner!.send(message);
		return answered;
	};

	/** Spawns `sh -c script`; resolves with the answer to the spawn and how long it took. */
	const spawnShell = async (script = 'exit 0') => request({op: 'spawn', id: nextId++, file: '/bin/sh', args: ['-c', script], stdio: ['ignore', 'ignore', 'ignore'], relay: [], outputs: [], env: defaultVmmEnvironment(), dir: undefined, atExit: undefined});

	/** Runs `sh -c script` as a short command; resolves with its answer and how long it took. */
	const run = async (script: string) => request({op: 'run', id: nextId++, file: '/bin/sh', args: ['-c', script], timeoutMs: 10_000, maxOutputBytes: 4096, maxStdoutBytes: undefined, env: defaultVmmEnvironment()});

	beforeEach(() => {
		work = mkdtempSync(path.join(tmpdir(), 'vmwarden-yield-'));
		schedstat = path.join(work, 'schedstat');
		hostWaited(1000);
	});
	afterEach(async () => {
		if (spawner?.connected === true) {
			const exited = new Promise(resolve => {
				spawner!.once('exit', resolve);
			});
			spawner.disconnect();
			await exited;
		}

		rmSync(work, {recursive: true, force: true});
	});

	test('a host that did not wait holds nothing back', async () => {
		await start({waitMs: 2, pauseMs: PAUSE_MS, maxPauseMs: 10 * PAUSE_MS});
		const spawned = await Promise.all([spawnShell(), spawnShell(), spawnShell()]);
		expect(spawned.map(({op}) => op)).toEqual(['spawned', 'spawned', 'spawned']);
		expect(Math.max(...spawned.map(({ms}) => ms))).toBeLessThan(PAUSE_MS);
	});

	test('a host that waited since the last look holds the next spawn back for a pause, then it goes', async () => {
		await start({waitMs: 2, pauseMs: PAUSE_MS, maxPauseMs: 10 * PAUSE_MS});
		// The first look only takes the figure: nothing recent to judge.
		expect((await spawnShell()).ms).toBeLessThan(PAUSE_MS);
		// 1 ms of waiting is under the 2 ms that counts.
		hostWaited(waitedMs + 1);
		expect((await spawnShell()).ms).toBeLessThan(PAUSE_MS);
		hostWaited(waitedMs + 30);
		const held = await spawnShell();
		expect(held.op).toBe('spawned');
		expect(held.ms).toBeGreaterThanOrEqual(PAUSE_MS);
	});

	test('a host that keeps waiting holds a spawn back at most maxPauseMs, then it goes', async () => {
		const pauseMs = 200;
		await start({waitMs: 2, pauseMs, maxPauseMs: 4 * pauseMs});
		await spawnShell();
		// The host waits for a CPU all the time: every look sees more.
		const waiting = setInterval(() => {
			hostWaited(waitedMs + 50);
		}, 20);
		try {
			hostWaited(waitedMs + 50);
			const held = await spawnShell();
			expect(held.op).toBe('spawned');
			// Paused for maxPauseMs in all, measured, and not forever.
			expect(held.ms).toBeGreaterThanOrEqual(4 * pauseMs);
			expect(held.ms).toBeLessThan(40 * pauseMs);
		} finally {
			clearInterval(waiting);
		}
	});

	test('a short command never waits, while a spawn does', async () => {
		await start({waitMs: 2, pauseMs: PAUSE_MS, maxPauseMs: 10 * PAUSE_MS});
		await spawnShell();
		hostWaited(waitedMs + 30);
		const [spawned, ran] = await Promise.all([spawnShell(), run('exit 0')]);
		expect(ran.op).toBe('ran');
		expect(ran.ms).toBeLessThan(PAUSE_MS);
		expect(spawned.ms).toBeGreaterThanOrEqual(PAUSE_MS);
	});

	test('after a quiet while, what the host waited meanwhile holds nothing back', async () => {
		const recentMs = 300;
		await start({waitMs: 2, pauseMs: PAUSE_MS, maxPauseMs: 10 * PAUSE_MS, recentMs});
		await spawnShell();
		hostWaited(waitedMs + 30);
		// Longer than a look stays recent: the wait is not recent any more.
		await new Promise(resolve => {
			setTimeout(resolve, recentMs + 100);
		});
		expect((await spawnShell()).ms).toBeLessThan(PAUSE_MS);
	});

	test('without a readable schedstat nothing is held back', async () => {
		rmSync(schedstat);
		await start({waitMs: 0, pauseMs: PAUSE_MS, maxPauseMs: 10 * PAUSE_MS});
		const spawned = await Promise.all([spawnShell(), spawnShell()]);
		expect(Math.max(...spawned.map(({ms}) => ms))).toBeLessThan(PAUSE_MS);
	});

	test('a real spawner reads its host\'s main thread', async () => {
		const pool = new SpawnerPool();
		const child = await pool.spawn('sleep', ['30'], defaultVmmEnvironment(), ['ignore', 'ignore', 'ignore'], []);
		try {
			const spawnerPid = readProcessStat(child.pid)!.parentPid;
			const argv = readFileSync(`/proc/${spawnerPid}/cmdline`, 'utf8').split('\0');
			const settings = spawnerYield(process.pid);
			expect(JSON.parse(argv.at(-2)!)).toEqual(settings);
			expect(settings.schedstat).toBe(`/proc/${process.pid}/task/${process.pid}/schedstat`);
			// Where the kernel keeps scheduler statistics, the spawner holds the file open.
			if (existsSync(settings.schedstat)) {
				const open = readdirSync(`/proc/${spawnerPid}/fd`).map(fd => readlinkSync(`/proc/${spawnerPid}/fd/${fd}`));
				expect(open).toContain(settings.schedstat);
			}
		} finally {
			child.kill('SIGKILL');
			await child.exited;
			await pool.closeIdle();
		}
	});
});
