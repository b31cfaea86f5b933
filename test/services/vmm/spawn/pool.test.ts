/**
 * The spawner pool spreads a big fleet's children over several spawner processes (libuv reaps a
 * process's children one waitpid each per SIGCHLD), and keeps a small one in a single process. A
 * burst of commands next to a big fleet goes to a spawner process with no VMM among its children.
 */
import {readdirSync, readFileSync} from 'node:fs';
import {isProcessRunning, processIdentity, readProcessStat, type ProcessIdentity} from '../../../../src/services/state-dir/process-identity.js';
import {spawnTurn} from '../../../../src/services/vmm/spawn/pace.js';
import {SpawnerPool, type SpawnedChild} from '../../../../src/services/vmm/spawn/spawner.js';
import {defaultVmmEnvironment} from '../../../../src/services/vmm/vmm-environment.js';

function parentOf(pid: number): number {
	return readProcessStat(pid)!.parentPid;
}

/** The spawner processes of `children`, by identity (a PID alone could be another process's later). */
function spawnersOf(children: SpawnedChild[]): ProcessIdentity[] {
	return [...new Set(children.map(child => parentOf(child.pid)))].map(pid => processIdentity(pid)!);
}

/** The spawner processes this process started (Node children run with `-e`), by pid. */
function spawnerPids(): number[] {
	return readdirSync('/proc').filter(name => /^\d+$/.test(name)).map(Number).filter(pid => {
		try {
			return readProcessStat(pid)?.parentPid === process.pid && readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes('-e');
		} catch {
			return false;
		}
	});
}

async function sleepIn(pool: SpawnerPool): Promise<SpawnedChild> {
	return pool.spawn('sleep', ['30'], defaultVmmEnvironment(), ['ignore', 'ignore', 'ignore'], []);
}

async function killAll(children: SpawnedChild[]): Promise<void> {
	for (const child of children) {
		child.kill('SIGKILL');
	}

	await Promise.all(children.map(async child => child.exited));
}

async function endAll(pool: SpawnerPool, children: SpawnedChild[]): Promise<void> {
	await killAll(children);
	await pool.closeIdle();
}

describe('SpawnerPool', () => {
	test('a spawner holds its share of children; the next child goes to another; commands to the least loaded', async () => {
		const pool = new SpawnerPool(2);
		const children: SpawnedChild[] = [];
		let spawners: ProcessIdentity[] = [];
		try {
			for (let index = 0; index < 3; index++) {
				children.push(await pool.spawn('sleep', ['30'], defaultVmmEnvironment(), ['ignore', 'ignore', 'ignore'], []));
			}

			const parents = children.map(child => parentOf(child.pid));
			spawners = spawnersOf(children);
			expect(parents[0]).toBe(parents[1]);
			expect(parents[2]).not.toBe(parents[0]);
			expect(parents.map(parent => parentOf(parent))).toEqual([process.pid, process.pid, process.pid]);
			expect(pool.size).toBe(2);
			// The second spawner holds one child, the first two: the command goes to the second.
			const result = await pool.run('sh', ['-c', 'echo "$PPID" >&2'], {env: defaultVmmEnvironment(), timeoutMs: 5000, maxOutputBytes: 100});
			expect({code: result.code, parent: Number(result.stderr.trim())}).toEqual({code: 0, parent: parents[2]});
		} finally {
			await killAll(children);
		}

		await pool.closeIdle();
		expect(spawners.length).toBe(2);
		expect(spawners.filter(spawner => isProcessRunning(spawner))).toEqual([]);
	});

	test('a burst of commands next to a large fleet runs in a spawner of its own; a lone command and a small fleet\'s do not', async () => {
		// Prints the pid of the spawner process that ran it, then stays a moment: the burst overlaps.
		const parentPid = async (pool: SpawnerPool) => {
			const result = await pool.run('sh', ['-c', 'echo "$PPID" >&2; sleep 0.3'], {env: defaultVmmEnvironment(), timeoutMs: 5000, maxOutputBytes: 100});
			expect(result.code).toBe(0);
			return Number(result.stderr.trim());
		};

		const pool = new SpawnerPool(10, {children: 2, burst: 2});
		const small = new SpawnerPool(10, {children: 3, burst: 2});
		const children: SpawnedChild[] = [];
		let spawners: ProcessIdentity[] = [];
		try {
			for (const each of [pool, pool, small, small]) {
				children.push(await each.spawn('sleep', ['30'], defaultVmmEnvironment(), ['ignore', 'ignore', 'ignore'], []));
			}

			const [fleet, smallFleet] = [parentOf(children[0]!.pid), parentOf(children[2]!.pid)];
			expect(await parentPid(pool)).toBe(fleet);
			const burst = await Promise.all([parentPid(pool), parentPid(pool), parentPid(pool), parentPid(pool)]);
			// Before it ends, idle, a moment after its last command.
			const commandsSpawner = processIdentity(burst[2]);
			// The first two run in the fleet's spawner; from the third on, two commands already run.
			expect(burst.slice(0, 2)).toEqual([fleet, fleet]);
			expect(burst[2]).not.toBe(fleet);
			expect(burst[3]).toBe(burst[2]);
			expect(parentOf(burst[2])).toBe(process.pid);
			expect(pool.size).toBe(1);
			// Closing the idle spawners includes the commands' own, and waits until it is gone.
			await pool.closeIdle();
			expect(isProcessRunning(commandsSpawner!)).toBe(false);
			// Two children, fewer than its threshold: the whole burst stays with them.
			expect(await Promise.all([parentPid(small), parentPid(small), parentPid(small)])).toEqual([smallFleet, smallFleet, smallFleet]);
			spawners = [processIdentity(fleet)!, processIdentity(smallFleet)!, commandsSpawner!];
		} finally {
			await killAll(children);
		}

		await Promise.all([pool.closeIdle(), small.closeIdle()]);
		expect(spawners.length).toBe(3);
		expect(spawners.filter(spawner => isProcessRunning(spawner))).toEqual([]);
	});

	test('spawns for a further spawner wait until a spawning one has started all it was given', async () => {
		const sleep = async (pool: SpawnerPool) => pool.spawn('sleep', ['30'], defaultVmmEnvironment(), ['ignore', 'ignore', 'ignore'], []);
		const children: SpawnedChild[] = [];
		let spawners: ProcessIdentity[] = [];
		const one = new SpawnerPool(1, undefined, 1);
		const two = new SpawnerPool(1, undefined, 2);
		try {
			const held = [sleep(one), sleep(one)];
			const together = [sleep(two), sleep(two)];
			// Asked for in one tick: with one spawner spawning at a time, the second waits for the first.
			expect([one.size, two.size]).toEqual([1, 2]);
			children.push(...await Promise.all([...held, ...together]));
			expect([one.size, two.size]).toEqual([2, 2]);
			spawners = spawnersOf(children);
			expect(spawners.length).toBe(4);
		} finally {
			await killAll(children);
		}

		await Promise.all([one.closeIdle(), two.closeIdle()]);
		expect(spawners.filter(spawner => isProcessRunning(spawner))).toEqual([]);
	});

	test('a spawn that fails lets the spawns held behind it go', async () => {
		const pool = new SpawnerPool(1, undefined, 1);
		const failed = pool.spawn('/nonexistent/vmm', [], defaultVmmEnvironment(), ['ignore', 'ignore', 'ignore'], []);
		const next = pool.spawn('sleep', ['30'], defaultVmmEnvironment(), ['ignore', 'ignore', 'ignore'], []);
		await expect(failed).rejects.toMatchObject({name: 'SpawnFailure', code: 'ENOENT'});
		const child = await next;
		// The failed spawn left no child: the held one went to the same spawner.
		expect(pool.size).toBe(1);
		child.kill('SIGKILL');
		await child.exited;
		await pool.closeIdle();
	});

	test('held spawns go in the order they were asked for', async () => {
		const pool = new SpawnerPool(1, undefined, 1);
		const order: number[] = [];
		const children = await Promise.all([0, 1, 2, 3, 4].map(async index => {
			const child = await sleepIn(pool);
			order.push(index);
			return child;
		}));
		expect(order).toEqual([0, 1, 2, 3, 4]);
		expect(pool.size).toBe(5);
		await endAll(pool, children);
	});

	test('a spawner lost while spawning lets the spawns held behind it go', async () => {
		const pool = new SpawnerPool(1, undefined, 1);
		const before = new Set(spawnerPids());
		const first = sleepIn(pool);
		const held = [sleepIn(pool), sleepIn(pool)];
		const started = spawnerPids().filter(pid => !before.has(pid));
		expect(started.length).toBe(1);
		process.kill(started[0]!, 'SIGKILL');
		await expect(first).rejects.toMatchObject({name: 'SpawnFailure', lost: true});
		const children = await Promise.all(held);
		expect(pool.size).toBe(2);
		await endAll(pool, children);
	});

	test('every spawner the pool makes starts a child, also when a held spawn finds room in an older one', async () => {
		const pool = new SpawnerPool(1, undefined, 1);
		const first = await sleepIn(pool);
		const second = sleepIn(pool);
		const held = sleepIn(pool);
		// Other VMs' work waits for spawn turns too: the held spawn's turn comes behind it, and by
		// then the first child is usually gone and its spawner has room again (when it is not, the held
		// spawn needs a third spawner, and starts its child there).
		let busy = true;
		const others = Array.from({length: 2000}, async () => {
			while (busy) {
				await spawnTurn();
			}
		});
		const children = [await second];
		const used = new Set([parentOf(first.pid), parentOf(children[0]!.pid)]);
		first.kill('SIGKILL');
		await first.exited;
		children.push(await held);
		used.add(parentOf(children[1]!.pid));
		busy = false;
		await Promise.all(others);
		expect(pool.size).toBe(used.size);
		await endAll(pool, children);
	});

	test('a small fleet stays in one spawner process', async () => {
		const pool = new SpawnerPool(4);
		const children = [];
		for (let index = 0; index < 4; index++) {
			children.push(await pool.spawn('sleep', ['30'], defaultVmmEnvironment(), ['ignore', 'ignore', 'ignore'], []));
		}

		const spawners = spawnersOf(children);
		await killAll(children);
		await pool.closeIdle();
		expect([spawners.length, pool.size]).toEqual([1, 1]);
		expect(spawners.filter(spawner => isProcessRunning(spawner))).toEqual([]);
	});
});
