/**
 * A captured output's FIFO: made by `mkfifo` from the spawner process (the host never forks), mode
 * 0600, both ends open.
 */
import {chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {openCapturePipe} from '../../../src/services/console/pipe.js';

let dir: string;
beforeEach(() => {
	dir = mkdtempSync(join(tmpdir(), 'vmwarden-pipe-'));
});
afterEach(() => {
	rmSync(dir, {recursive: true, force: true});
});

describe('openCapturePipe', () => {
	test('mkfifo runs from a spawner process, not the host; the FIFO is 0600 and both ends are open', async () => {
		// A mkfifo first on the PATH that notes its parent's pid and second argument, then does the work.
		const bin = join(dir, 'bin');
		mkdirSync(bin);
		const seen = join(dir, 'mkfifo.parent');
		writeFileSync(join(bin, 'mkfifo'), `#!/bin/sh\necho "$PPID" > "${seen}"\ntr '\\0' '\\n' < "/proc/$PPID/cmdline" | sed -n 2p >> "${seen}"\nPATH=/usr/bin:/bin exec mkfifo "$@"\n`);
		chmodSync(join(bin, 'mkfifo'), 0o755);
		const hostPath = process.env['PATH'];
		process.env['PATH'] = `${bin}:${hostPath ?? '/usr/bin:/bin'}`;
		try {
			const pipe = await openCapturePipe(dir, 'console.fifo');
			const stats = statSync(join(dir, 'console.fifo'));
			const [parent, secondArgument] = readFileSync(seen, 'utf8').trim().split('\n');
			expect({fifo: stats.isFIFO(), mode: stats.mode & 0o777, fromHost: Number(parent) === process.pid, secondArgument}).toEqual({fifo: true, mode: 0o600, fromHost: false, secondArgument: '-e'});
			await pipe.writer.write('hello');
			await pipe.writer.close();
			const read = await new Promise<string>(resolve => {
				let text = '';
				pipe.reader.setEncoding('utf8');
				pipe.reader.on('data', (chunk: string) => {
					text += chunk;
				});
				pipe.reader.on('end', () => {
					resolve(text);
				});
			});
			expect(read).toBe('hello');
		} finally {
			process.env['PATH'] = hostPath;
		}
	});

	test('a FIFO that cannot be made is an error naming it and why', async () => {
		writeFileSync(join(dir, 'taken'), '');
		await expect(openCapturePipe(dir, 'taken')).rejects.toThrow(new RegExp(`^mkfifo ${join(dir, 'taken')} exited with 1: .*File exists`));
	});
});
