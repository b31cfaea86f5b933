/**
 * The spawner pool spreads a big fleet's children over several spawner processes (libuv reaps a
 * process's children one waitpid each per SIGCHLD), and keeps a small one in a single process.
 */
import {readFileSync} from 'node:fs';
import {SpawnerPool, type SpawnedChild} from '../../../../src/services/vmm/spawn/spawner.js';

function parentOf(pid: number): number {
	const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
	return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

function isAlive(pid: number): boolean {
	try {
		process.kill(pid, 0);
		return true;
	} catch {
		return false;
	}
}

describe('SpawnerPool', () => {
	test('a spawner holds its share of children; the next child goes to another; commands to the least loaded', async () => {
		const pool = new SpawnerPool(2);
		const children: SpawnedChild[] = [];
		let parents: number[] = [];
		try {
			for (let index = 0; index < 3; index++) {
				children.push(await pool.spawn('sleep', ['30'], ['ignore', 'ignore', 'ignore'], []));
			}

			parents = children.map(child => parentOf(child.pid));
			expect(parents[0]).toBe(parents[1]);
			expect(parents[2]).not.toBe(parents[0]);
			expect(parents.map(parent => parentOf(parent))).toEqual([process.pid, process.pid, process.pid]);
			expect(pool.size).toBe(2);
			// The second spawner holds one child, the first two: the command goes to the second.
			const result = await pool.run('sh', ['-c', 'echo "$PPID" >&2'], 5000, 100);
			expect({code: result.code, parent: Number(result.stderr.trim())}).toEqual({code: 0, parent: parents[2]});
		} finally {
			for (const child of children) {
				child.kill('SIGKILL');
			}

			await Promise.all(children.map(async child => child.exited));
		}

		await pool.closeIdle();
		expect(parents.filter(parent => isAlive(parent))).toEqual([]);
	});

	test('a small fleet stays in one spawner process', async () => {
		const pool = new SpawnerPool(4);
		const children = [];
		for (let index = 0; index < 4; index++) {
			children.push(await pool.spawn('sleep', ['30'], ['ignore', 'ignore', 'ignore'], []));
		}

		const parents = new Set(children.map(child => parentOf(child.pid)));
		for (const child of children) {
			child.kill('SIGKILL');
		}

		await Promise.all(children.map(async child => child.exited));
		await pool.closeIdle();
		expect([parents.size, pool.size]).toEqual([1, 1]);
		expect([...parents].filter(parent => isAlive(parent))).toEqual([]);
	});
});
