import {existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync} from 'node:fs';
import {createInterface} from 'node:readline';
import {join, resolve} from 'node:path';
import {execa, type ResultPromise} from 'execa';
import {InvalidConfigError} from '../../../src/errors.js';
import {claimStateDir, LOCK_FILE} from '../../../src/services/state-dir/lock.js';
import {openStateDir, whileLocked} from '../../../src/services/state-dir/open.js';
import {processIdentity} from '../../../src/services/state-dir/process-identity.js';
import {useStateDirFixture} from './fixtures/state-dir-fixture.js';

const {makeFolder, deadPid} = useStateDirFixture();

const inUse = expect.objectContaining({field: 'stateDir', constructor: InvalidConfigError}) as unknown as Error;

describe('the state directory lock', () => {
	test('a second live owner is refused; the lock is given back; a dead owner\'s lock is taken over', async () => {
		const stateDir = makeFolder();
		const release = claimStateDir(stateDir);
		expect(() => claimStateDir(stateDir)).toThrow(inUse);
		expect(() => claimStateDir(stateDir)).toThrow(`${stateDir} is in use by another supervisor of this process (${process.pid}): shut it down first, or give each supervisor its own stateDir`);
		release();
		release();
		expect(existsSync(join(stateDir, LOCK_FILE))).toBe(false);

		// A lock from before tokens existed, left by a dead process.
		writeFileSync(join(stateDir, LOCK_FILE), JSON.stringify({pid: await deadPid(), startTime: '1'}));
		const again = claimStateDir(stateDir);
		expect(JSON.parse(readFileSync(join(stateDir, LOCK_FILE), 'utf8'))).toEqual({...processIdentity(process.pid), token: expect.stringMatching(/^[0-9a-f]{32}$/) as string});
		again();
	});

	test('a symbolic link planted at the lock\'s name is refused, and its target is left unchanged', () => {
		const stateDir = makeFolder();
		const target = join(makeFolder(), 'precious');
		writeFileSync(target, 'precious\n');
		symlinkSync(target, join(stateDir, LOCK_FILE));
		expect(() => claimStateDir(stateDir)).toThrow(/supervisor\.lock is a symbolic link/);
		expect(readFileSync(target, 'utf8')).toBe('precious\n');
	});

	test('a lock file that is no lock (garbage, a directory) is refused, not taken over', () => {
		for (const plant of [(path: string) => writeFileSync(path, '{"pid": -1}'), (path: string) => mkdirSync(path)]) {
			const stateDir = makeFolder();
			plant(join(stateDir, LOCK_FILE));
			expect(() => claimStateDir(stateDir)).toThrow(inUse);
			expect(existsSync(join(stateDir, LOCK_FILE))).toBe(true);
		}
	});

	test('a takeover whose taker died half-way is itself taken over', async () => {
		const stateDir = makeFolder();
		const stale = {pid: await deadPid(), startTime: '1', token: 'a'.repeat(32)};
		writeFileSync(join(stateDir, LOCK_FILE), JSON.stringify(stale));
		writeFileSync(join(stateDir, `${LOCK_FILE}.takeover-${stale.token}`), JSON.stringify({pid: stale.pid, startTime: '2', token: 'b'.repeat(32)}));
		claimStateDir(stateDir)();
		expect(existsSync(join(stateDir, LOCK_FILE))).toBe(false);
	});

	test('an error after the lock is taken gives it back', () => {
		const stateDir = makeFolder();
		expect(() => whileLocked(stateDir, () => {
			throw new Error('reading failed');
		})).toThrow('reading failed');
		expect(existsSync(join(stateDir, LOCK_FILE))).toBe(false);
		claimStateDir(stateDir)();
	});

	test('a directory and other strays inside vms/, a damaged last CID, do not fail the opening; drafts are swept', () => {
		const stateDir = makeFolder();
		mkdirSync(join(stateDir, 'vms'), {mode: 0o700});
		mkdirSync(join(stateDir, 'vms', '2050.json'));
		mkdirSync(join(stateDir, 'vms', 'notes'));
		writeFileSync(join(stateDir, 'vms', '.2051.json.0123456789abcdef.tmp'), 'half');
		writeFileSync(join(stateDir, 'last-cid'), 'garbage');
		const opened = openStateDir(stateDir);
		expect(opened.lastAllocatedCid).toBeUndefined();
		expect(opened.lastCidProblem).toBe('last-cid does not hold a guest CID');
		expect(opened.staleVms).toEqual([{cid: 2050, file: '2050.json'}]);
		expect(opened.strays).toEqual(['notes']);
		expect(existsSync(join(stateDir, 'vms', '.2051.json.0123456789abcdef.tmp'))).toBe(false);
		opened.release();
		expect(existsSync(join(stateDir, LOCK_FILE))).toBe(false);
	});
});

describe('contenders racing for a stale lock', () => {
	const TRIALS = 50;
	const CONTENDERS = 3;
	const contenders: Array<{child: ResultPromise; send: (line: string) => void; next: () => Promise<string>}> = [];

	beforeAll(async () => {
		for (let index = 0; index < CONTENDERS; index++) {
			const child = execa(process.execPath, ['--import', 'tsx', resolve('test/services/state-dir/fixtures/lock-contender.ts')], {reject: false, buffer: false, stdin: 'pipe', stdout: 'pipe', stderr: 'inherit'});
			const lines = createInterface({input: child.stdout})[Symbol.asyncIterator]();
			const {stdin} = child;
			contenders.push({child, send: line => stdin.write(line), next: async () => String((await lines.next()).value)});
		}

		// Each answers once it runs: a release with nothing held.
		await Promise.all(contenders.map(async ({send, next}) => {
			send('release\n');
			expect(await next()).toBe('released');
		}));
	}, 60_000);

	afterAll(async () => {
		for (const {child} of contenders) {
			child.stdin?.end();
			await child;
		}
	});

	test(`exactly one of ${CONTENDERS} processes wins each of ${TRIALS} races for a dead owner's lock`, async () => {
		const pid = await deadPid();
		const winners: number[] = [];
		for (let trial = 0; trial < TRIALS; trial++) {
			const stateDir = makeFolder();
			writeFileSync(join(stateDir, LOCK_FILE), `${JSON.stringify({pid, startTime: '1', token: trial.toString(16).padStart(32, '0')})}\n`);
			const at = Date.now() + 40;
			const answers = await Promise.all(contenders.map(async ({send, next}) => {
				send(`claim ${stateDir} ${at}\n`);
				return next();
			}));
			const won = answers.filter(answer => answer === 'won').length;
			winners.push(won);
			for (const answer of answers.filter(answer => answer !== 'won')) {
				expect(answer).toMatch(/^lost .*in use by the supervisor of process \d+$/);
			}

			await Promise.all(contenders.map(async ({send, next}) => {
				send('release\n');
				return next();
			}));
			expect(existsSync(join(stateDir, LOCK_FILE))).toBe(false);
		}

		expect(winners).toEqual(Array.from({length: TRIALS}, () => 1));
	}, 60_000);
});
