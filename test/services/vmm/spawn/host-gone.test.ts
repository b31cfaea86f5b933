/**
 * The spawner process when its host goes while it works: it ends quietly, and nothing it started
 * stays. A message it writes to a host that has just gone fails; that must not become an uncaught
 * 'error' with a stack trace on the host's terminal (the spawner's stderr is the host's).
 */
import {mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {startSpawnerProgram} from './spawner-program.js';

describe('a spawner whose host goes while it works', () => {
	let work: string;
	beforeEach(() => {
		work = mkdtempSync(path.join(tmpdir(), 'vmwarden-host-gone-'));
	});
	afterEach(() => {
		rmSync(work, {recursive: true, force: true});
	});

	test('a reply it can no longer deliver ends it quietly, with exit code 0', async () => {
		// A directory whose removal takes a while: the host goes while the spawner removes it, and the
		// spawner's answer ('removed') is then written to a closed channel.
		const tree = path.join(work, 'tree');
		mkdirSync(tree);
		for (let index = 0; index < 20_000; index++) {
			writeFileSync(path.join(tree, String(index)), '');
		}

		const child = await startSpawnerProgram(['0'], 'pipe');
		let stderr = '';
		child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
			stderr += chunk;
		});
		const exited = new Promise<number | null>(resolve => {
			child.once('exit', resolve);
		});
		let removed = false;
		child.on('message', () => {
			removed = true;
		});
		child.send({op: 'rm', id: 1, path: tree});
		// Long enough for the request to be read, far shorter than removing 20,000 files.
		await new Promise(resolve => {
			setTimeout(resolve, 30);
		});
		child.disconnect();
		expect({code: await exited, stderr}).toEqual({code: 0, stderr: ''});
		// The race this test is about happened: the answer came after the host had gone.
		expect(removed).toBe(false);
	});
});
