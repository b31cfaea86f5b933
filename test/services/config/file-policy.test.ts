import {execFileSync} from 'node:child_process';
import {chmodSync, chownSync, closeSync, constants, existsSync, fstatSync, linkSync, mkdirSync, openSync, readdirSync, readlinkSync, statSync, symlinkSync, writeFileSync} from 'node:fs';
import {open} from 'node:fs/promises';
import {join} from 'node:path';
import {monitorEventLoopDelay} from 'node:perf_hooks';
import {InvalidConfigError} from '../../../src/errors.js';
import type {FilePolicy, FileRequester} from '../../../src/services/config/file-policy.js';
import {validateConfig} from '../../../src/services/config/validate.js';
import type {VmConfig} from '../../../src/services/config/vm-config.js';
import {listConfigFiles} from '../../../src/services/config/files.js';
import {crosvmCommand, planDescriptors} from '../../../src/services/crosvm/command.js';
import {openDescriptors} from '../../../src/services/vmm/descriptors.js';
import {expectInvalid} from '../../helpers/expect-invalid.js';
import {fileState, makeFixtureFiles} from '../../helpers/fixture-files.js';
import {openDescriptors as descriptorsOfThisProcess} from '../../helpers/leak-checker.js';

// The attacker is a client whose config the host validates and opens as root (these tests run as
// root). `outside` holds what the attacker must not reach; `allowed` is the client's directory.
const {dir, kernel, remove} = makeFixtureFiles('vmwarden-policy-');
const outside = join(dir, 'outside');
const allowed = join(dir, 'allowed');
mkdirSync(outside);
mkdirSync(allowed);
const secret = join(outside, 'secret');
writeFileSync(secret, 'root:only\n');
chmodSync(secret, 0o600);
const inside = join(allowed, 'kernel');
writeFileSync(inside, 'kernel');

const attacker: FileRequester = {uid: 1234, gids: [1234]};
const restricted: FilePolicy = {allowedDirectories: [allowed]};

afterAll(remove);

/** Everything in `outside`, as it was: an attack that changed or created anything there fails. */
function outsideState(): Record<string, ReturnType<typeof fileState>> {
	return Object.fromEntries(readdirSync(outside).map(name => [name, fileState(join(outside, name))]));
}

let outsideBefore: ReturnType<typeof outsideState>;
let descriptorsBefore: Map<number, string>;

beforeEach(() => {
	outsideBefore = outsideState();
	descriptorsBefore = descriptorsOfThisProcess();
});

afterEach(() => {
	expect(outsideState()).toEqual(outsideBefore);
	expect(descriptorsOfThisProcess()).toEqual(descriptorsBefore);
});

/** Both validation and the open refuse, with the same field and reason. */
function refused(config: VmConfig, field: string, reason: string, policy?: FilePolicy, requester?: FileRequester): void {
	expectInvalid(() => validateConfig(config, policy, requester), field, reason);
	// The plan straight from the config: openDescriptors must stand on its own, without validation.
	expectInvalid(() => openDescriptors(planDescriptors(listConfigFiles(config), false), policy, requester).close(), field, reason);
}

/** Validation and the open both accept; returns what the open gave for `field`, closed. */
function accepted(config: VmConfig, field: string, policy?: FilePolicy, requester?: FileRequester): {path: string; ino: number} {
	validateConfig(config, policy, requester);
	const {fds} = crosvmCommand(config, {cid: 10, target: {os: 'linux', arch: 'x86_64'}});
	const opened = openDescriptors(fds, policy, requester);
	try {
		const fd = opened.stdio[fds.findIndex(entry => entry.field === field)] as number;
		return {path: readlinkSync(`/proc/self/fd/${fd}`), ino: fstatSync(fd).ino};
	} finally {
		opened.close();
	}
}

const q = JSON.stringify;

describe('outputs are never opened through a symbolic link', () => {
	const link = join(allowed, 'console-link');
	symlinkSync(secret, link);
	const dangling = join(allowed, 'dangling-link');
	symlinkSync(join(outside, 'planted'), dangling);

	test('a console output linked to a root-only file outside gets nothing appended, whatever the policy', () => {
		for (const policy of [{}, {createOutputs: true}, restricted] satisfies FilePolicy[]) {
			refused({kernel, consoleOutput: link}, 'consoleOutput', `${q(link)} is a symbolic link: an output is never opened through one`, policy);
		}
	});

	test('a log output linked to a file that does not exist yet creates nothing where the link points', () => {
		refused({kernel, logOutput: dangling}, 'logOutput', `${q(dangling)} is a symbolic link: an output is never opened through one`, {createOutputs: true});
		expect(existsSync(join(outside, 'planted'))).toBe(false);
	});

	test('a writable disk through a link is refused; a read-only one may follow it', () => {
		refused({kernel, disks: [{image: link, writable: true}]}, 'disks[0].image', `${q(link)} is a symbolic link: a writable disk is never opened through one`);
		expect(accepted({kernel, disks: [{image: link, writable: false}]}, 'disks[0].image').path).toBe(secret);
	});
});

describe('the requester: a file it could not open itself is refused', () => {
	const rootOnly = join(outside, 'shadow');
	writeFileSync(rootOnly, 'root:$6$hash:::\n');
	chmodSync(rootOnly, 0o640);
	const othersFile = join(allowed, 'others.img');
	writeFileSync(othersFile, 'image');
	chownSync(othersFile, 4321, 4321);
	chmodSync(othersFile, 0o644);
	const noMode = join(allowed, 'mode-000.img');
	writeFileSync(noMode, 'image');
	chownSync(noMode, 1234, 1234);
	chmodSync(noMode, 0o000);

	test('an /etc/shadow-like file (root, 0640) as a writable disk', () => {
		refused({kernel, disks: [{image: rootOnly, writable: true}]}, 'disks[0].image', `${q(rootOnly)} is not readable and writable by uid 1234 (owner 0, group 0, mode 0640)`, {}, attacker);
	});

	test('another user\'s world-readable image: readable, not writable', () => {
		refused({kernel, disks: [{image: othersFile, writable: true}]}, 'disks[0].image', `${q(othersFile)} is not readable and writable by uid 1234 (owner 4321, group 4321, mode 0644)`, {}, attacker);
		accepted({kernel, disks: [{image: othersFile, writable: false}]}, 'disks[0].image', {}, attacker);
		accepted({kernel, disks: [{image: othersFile, writable: true}]}, 'disks[0].image', {}, {uid: 4321});
	});

	test('group bits count only for the requester\'s groups', () => {
		refused({kernel, disks: [{image: rootOnly, writable: false}]}, 'disks[0].image', `${q(rootOnly)} is not readable by uid 1234 (owner 0, group 0, mode 0640)`, {}, attacker);
		accepted({kernel, disks: [{image: rootOnly, writable: false}]}, 'disks[0].image', {}, {uid: 1234, gids: [0]});
	});

	test('its own file with mode 000, as a kernel and as an output', () => {
		refused({kernel: noMode}, 'kernel', `${q(noMode)} is not readable by uid 1234 (owner 1234, group 1234, mode 0000)`, {}, attacker);
		refused({kernel, consoleOutput: noMode}, 'consoleOutput', `${q(noMode)} is not writable by uid 1234 (owner 1234, group 1234, mode 0000)`, {}, attacker);
	});

	test('a requester who is the host itself is the host: the kernel\'s own check applies', () => {
		accepted({kernel, disks: [{image: rootOnly, writable: true}]}, 'disks[0].image', {}, {uid: process.geteuid!()});
	});
});

describe('inputs are regular files or block devices, never waited on', () => {
	const fifo = join(allowed, 'kernel.fifo');
	execFileSync('mkfifo', [fifo]);

	test('a FIFO as the kernel is refused without blocking the event loop, and was never opened', () => {
		const delay = monitorEventLoopDelay({resolution: 10});
		delay.enable();
		for (let round = 0; round < 20; round++) {
			refused({kernel: fifo}, 'kernel', `${q(fifo)} is a FIFO: an input must be a regular file or a block device`);
		}

		delay.disable();
		// A blocking open would never return (no writer ever comes); a generous bound shows it did not wait.
		expect(delay.max).toBeLessThan(2e9);
		// Nobody holds its read end: opening the write end without blocking finds no reader.
		expect(() => openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK)).toThrow(expect.objectContaining({code: 'ENXIO'}) as Error);
	});

	test('a FIFO as a console output is refused too: an output must be a regular file', () => {
		refused({kernel, consoleOutput: fifo}, 'consoleOutput', `${q(fifo)} is a FIFO: an output must be a regular file`);
	});

	test('a character device (no driver open is run for it)', () => {
		refused({kernel: '/dev/zero'}, 'kernel', '"/dev/zero" is a character device: an input must be a regular file or a block device');
		refused({kernel, logOutput: '/dev/null'}, 'logOutput', '"/dev/null" is a character device: an output must be a regular file');
	});
});

describe('a bare number is not one of the host\'s descriptors', () => {
	test.each([0, 1, 2])('descriptor %i is refused by default and with the opt-in', fd => {
		const reason = 'descriptors 0, 1 and 2 are the host\'s standard input, output and error';
		refused({kernel, consoleOutput: fd}, 'consoleOutput', reason);
		refused({kernel, consoleOutput: fd}, 'consoleOutput', reason, {allowHostDescriptors: true});
	});

	test('an open host descriptor is refused by default, taken with the opt-in', () => {
		const fd = openSync(join(allowed, 'host-log.txt'), 'a');
		try {
			refused({kernel, consoleOutput: fd}, 'consoleOutput', `a bare number (${fd}) would name one of the host's own descriptors: hand over a FileHandle, or let the file policy allow host descriptors`);
			expect(accepted({kernel, consoleOutput: fd}, 'consoleOutput', {allowHostDescriptors: true}).path).toBe(join(allowed, 'host-log.txt'));
		} finally {
			closeSync(fd);
		}
	});

	test('a FileHandle is the client\'s own file, taken under every policy', async () => {
		const handle = await open(join(allowed, 'handed.log'), 'a');
		try {
			const kernelHandle = await open(inside, 'r');
			expect(accepted({kernel: kernelHandle, consoleOutput: handle}, 'consoleOutput', {allowedDirectories: []}).path).toBe(join(allowed, 'handed.log'));
			await kernelHandle.close();
		} finally {
			await handle.close();
		}
	});
});

describe('allowed directories', () => {
	const escapeLink = join(allowed, 'escape');
	symlinkSync(secret, escapeLink);
	const directoryLink = join(allowed, 'elsewhere');
	symlinkSync(outside, directoryLink);
	writeFileSync(join(outside, 'console.txt'), 'outside console\n');
	const innerLink = join(allowed, 'inner-link');
	symlinkSync(inside, innerLink);

	test('a kernel inside, by name or through a link that stays inside', () => {
		expect(accepted({kernel: inside}, 'kernel', restricted).path).toBe(inside);
		expect(accepted({kernel: innerLink}, 'kernel', restricted).path).toBe(inside);
	});

	test('a link inside that leads outside', () => {
		refused({kernel: escapeLink}, 'kernel', `${q(escapeLink)} resolves to ${q(secret)}, outside the allowed directories`, restricted);
	});

	test('a .. escape', () => {
		const dotDot = `${allowed}/../outside/secret`;
		refused({kernel: dotDot}, 'kernel', `${q(dotDot)} is outside the allowed directories`, restricted);
		refused({kernel: inside, consoleOutput: `${allowed}/../outside/console.txt`}, 'consoleOutput', `${q(`${allowed}/../outside/console.txt`)} is outside the allowed directories`, restricted);
	});

	test('an output under a linked directory: no link between the allowed directory and an output', () => {
		const viaLink = join(directoryLink, 'console.txt');
		refused({kernel: inside, consoleOutput: viaLink}, 'consoleOutput', `${q(viaLink)} is reached through a symbolic link (it is ${q(join(outside, 'console.txt'))}): an output must be reached without one`, restricted);
		const created = join(directoryLink, 'new.txt');
		refused({kernel: inside, consoleOutput: created}, 'consoleOutput', `${q(created)} is reached through a symbolic link (it is ${q(outside)}): an output must be reached without one`, {...restricted, createOutputs: true});
	});

	test('a hard link inside to a file outside is not a writable disk', () => {
		const hardLink = join(allowed, 'hard-link.img');
		const target = join(outside, 'hard-linked.img');
		writeFileSync(target, 'image');
		linkSync(target, hardLink);
		outsideBefore = outsideState();
		refused({kernel: inside, disks: [{image: hardLink, writable: true}]}, 'disks[0].image', `${q(hardLink)} has 2 hard links: a writable disk must have one name only`, restricted);
	});

	test('no directory at all: only handed-over files', () => {
		refused({kernel: inside}, 'kernel', `${q(inside)} is outside the allowed directories`, {allowedDirectories: []});
	});

	test('a policy naming a directory that does not exist is the host\'s error, named as such', () => {
		expectInvalid(() => validateConfig({kernel}, {allowedDirectories: [join(dir, 'none')]}), 'filePolicy.allowedDirectories[0]', `${q(join(dir, 'none'))} cannot be resolved: ENOENT`, 'option');
		expectInvalid(() => validateConfig({kernel}, {allowedDirectories: ['relative']}), 'filePolicy.allowedDirectories[0]', 'must be an absolute path without NUL bytes', 'option');
	});
});

describe('creating outputs', () => {
	test('by default a missing output is not created', () => {
		const path = join(allowed, 'not-created.txt');
		refused({kernel, consoleOutput: path}, 'consoleOutput', `${q(path)} does not exist, and the file policy does not let vmwarden create outputs`);
		expect(existsSync(path)).toBe(false);
	});

	test('with createOutputs: created 0600 inside, owned by the requester, only where it may create files', () => {
		const own = join(allowed, 'own');
		mkdirSync(own);
		chownSync(own, 1234, 1234);
		const policy: FilePolicy = {...restricted, createOutputs: true};
		const path = join(own, 'console.txt');
		expect(accepted({kernel: inside, consoleOutput: path}, 'consoleOutput', policy, attacker).path).toBe(path);
		// Exactly 0600 under any umask that leaves the owner's bits alone (reading the umask is racy).
		expect(statSync(path)).toMatchObject({uid: 1234, mode: constants.S_IFREG | 0o600});
		const rootDirectory = join(allowed, 'root-console.txt');
		refused({kernel: inside, consoleOutput: rootDirectory}, 'consoleOutput', `${q(rootDirectory)} cannot be created: uid 1234 may not create files in ${q(allowed)} (owner 0, group 0, mode ${(statSync(allowed).mode & 0o7777).toString(8).padStart(4, '0')})`, policy, attacker);
		expect(existsSync(rootDirectory)).toBe(false);
	});
});

describe('no window between the check and the open', () => {
	const target = join(allowed, 'swapped.txt');

	test('a file swapped for a link after validation is refused by the open, which checks its own descriptor', () => {
		writeFileSync(target, '');
		validateConfig({kernel: inside, consoleOutput: target}, restricted);
		execFileSync('ln', ['-sfn', secret, target]);
		const {fds} = crosvmCommand({kernel: inside, consoleOutput: target}, {cid: 10, target: {os: 'linux', arch: 'x86_64'}});
		expectInvalid(() => openDescriptors(fds, restricted), 'consoleOutput', `${q(target)} is a symbolic link: an output is never opened through one`);
	});

	test('under a racing swapper, every descriptor handed over is the checked file, never the secret', async () => {
		const {Worker} = await import('node:worker_threads');
		const stop = new Int32Array(new SharedArrayBuffer(4));
		// Swaps the name between a fresh regular file and a link to the secret, atomically, until told to stop.
		const swapper = new Worker(`
			const {renameSync, symlinkSync, writeFileSync} = require('node:fs');
			const {parentPort, workerData: {target, secret, stop}} = require('node:worker_threads');
			for (let round = 0; Atomics.load(stop, 0) === 0; round++) {
				writeFileSync(target + '.file', '');
				renameSync(target + '.file', target);
				symlinkSync(secret, target + '.link');
				renameSync(target + '.link', target);
				if (round === 0) {
					parentPort.postMessage('swapping');
				}
			}
		`, {eval: true, workerData: {target, secret, stop}});
		await new Promise(resolve => swapper.once('message', resolve));
		const secretIno = statSync(secret).ino;
		const {fds} = crosvmCommand({kernel: inside, consoleOutput: target}, {cid: 10, target: {os: 'linux', arch: 'x86_64'}});
		let opens = 0;
		let refusals = 0;
		try {
			for (let attempt = 0; attempt < 400; attempt++) {
				try {
					const opened = openDescriptors(fds, restricted);
					const fd = opened.stdio[0] as number;
					expect(fstatSync(fd).ino).not.toBe(secretIno);
					expect(readlinkSync(`/proc/self/fd/${fd}`)).not.toBe(secret);
					opened.close();
					opens++;
				} catch (error) {
					expect(error).toBeInstanceOf(InvalidConfigError);
					refusals++;
				}
			}
		} finally {
			Atomics.store(stop, 0, 1);
			await swapper.terminate();
		}

		expect(opens + refusals).toBe(400);
		// The race was met: some opens found the link in place (and refused it).
		expect(refusals).toBeGreaterThan(0);
	});
});
