import {closeSync, constants, fstatSync, openSync, readdirSync, readFileSync, statSync, writeFileSync} from 'node:fs';
import {open} from 'node:fs/promises';
import {join} from 'node:path';
import {InvalidConfigError, VmwardenError} from '../../../src/errors.js';
import {crosvmCommand} from '../../../src/services/crosvm/command.js';
import {openDescriptors} from '../../../src/services/vmm/descriptors.js';
import type {DescriptorAssignment} from '../../../src/services/vmm/driver.js';
import {makeFixtureFiles} from '../../helpers/fixture-files.js';

const {dir, kernel, image, directory, remove} = makeFixtureFiles('vmwarden-open-');

afterAll(remove);

function openDescriptorCount(): number {
	return readdirSync('/proc/self/fd').length;
}

/** The `flags:` of one of our descriptors, as the kernel keeps them. */
function flagsOf(fd: number): number {
	return Number.parseInt(/^flags:\s*([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))![1]!, 8);
}

const ACCESS_MODE = 3;

test('paths are opened per access, channels become pipes, the plan order is kept', () => {
	const console = join(dir, 'console.txt');
	const {fds} = crosvmCommand(
		{kernel, consoleOutput: console, indirectFiles: [image], disks: [{image, writable: false}, {image, writable: true}]},
		{cid: 10, target: {os: 'linux', arch: 'x86_64'}, payloadChannel: true},
	);
	const before = openDescriptorCount();
	const opened = openDescriptors(fds, {createOutputs: true});
	try {
		expect(opened.stdio).toHaveLength(fds.length);
		const [indirect, consoleFd, failure, disk0, disk1, kernelFd, payload] = opened.stdio;
		expect([failure, payload]).toEqual(['pipe', 'pipe']);
		for (const fd of [indirect, disk0, kernelFd]) {
			expect(flagsOf(fd as number) & ACCESS_MODE).toBe(constants.O_RDONLY);
		}

		expect(flagsOf(disk1 as number) & ACCESS_MODE).toBe(constants.O_RDWR);
		expect(flagsOf(consoleFd as number) & ACCESS_MODE).toBe(constants.O_WRONLY);
		expect(flagsOf(consoleFd as number) & constants.O_APPEND).toBe(constants.O_APPEND);
		expect(flagsOf(disk1 as number) & constants.O_APPEND).toBe(0);
		// The console file was created for the caller only: exactly 0600 under any umask that leaves
		// the owner's bits alone (reading the umask is racy).
		expect(fstatSync(consoleFd as number).mode & 0o777).toBe(0o600);
		expect(fstatSync(kernelFd as number).ino).toBe(statSync(kernel).ino);
		expect(openDescriptorCount()).toBe(before + 5);
	} finally {
		opened.close();
	}

	expect(openDescriptorCount()).toBe(before);
});

test('append does not truncate an existing console file', () => {
	const console = join(dir, 'existing-console.txt');
	writeFileSync(console, 'kept\n');
	const opened = openDescriptors([{childFd: 3, role: 'console', field: 'consoleOutput', kind: 'file', source: console, access: 'append'}]);
	opened.close();
	expect(statSync(console).size).toBe(5);
});

test('the caller\'s descriptors and FileHandles pass through and stay open after close()', async () => {
	const fd = openSync(image, 'r+');
	const handle = await open(kernel, 'r');
	try {
		const plan: DescriptorAssignment[] = [
			{childFd: 3, role: 'disk', field: 'disks[0].image', kind: 'file', source: fd, access: 'readWrite'},
			{childFd: 4, role: 'kernel', field: 'kernel', kind: 'file', source: handle, access: 'read'},
		];
		const opened = openDescriptors(plan, {allowHostDescriptors: true});
		expect(opened.stdio).toEqual([fd, handle.fd]);
		opened.close();
		opened.close();
		expect(() => fstatSync(fd)).not.toThrow();
		expect(() => fstatSync(handle.fd)).not.toThrow();
	} finally {
		closeSync(fd);
		await handle.close();
	}
});

test('close() is idempotent and closes only what it opened', () => {
	const before = openDescriptorCount();
	const opened = openDescriptors([{childFd: 3, role: 'kernel', field: 'kernel', kind: 'file', source: kernel, access: 'read'}]);
	const [fd] = opened.stdio;
	opened.close();
	expect(openDescriptorCount()).toBe(before);
	// Reuse the number for a descriptor of someone else: a second close() must not touch it.
	const others: number[] = [];
	try {
		while (!others.includes(fd as number) && others.length < 16) {
			others.push(openSync(image, 'r'));
		}

		expect(others).toContain(fd);
		opened.close();
		expect(() => fstatSync(fd as number)).not.toThrow();
	} finally {
		for (const other of others) {
			closeSync(other);
		}
	}
});

describe('failures close what was opened and name the field', () => {
	const readable = (childFd: number, field: string, source: string | number): DescriptorAssignment => ({childFd, role: 'disk', field, kind: 'file', source, access: 'read'});

	test.each<[string, () => DescriptorAssignment[], string, string]>([
		['a missing file last', () => [readable(3, 'indirectFiles[0]', image), {childFd: 4, role: 'failure', field: 'failure', kind: 'channel'}, readable(5, 'disks[0].image', image), readable(6, 'kernel', join(dir, 'missing'))], 'kernel', `${JSON.stringify(join(dir, 'missing'))} does not exist`],
		['a directory', () => [readable(3, 'disks[0].image', image), readable(4, 'disks[1].image', directory)], 'disks[1].image', `${JSON.stringify(directory)} is a directory`],
		['a read-only file to write', () => [readable(3, 'kernel', kernel), {childFd: 4, role: 'disk', field: 'disks[0].image', kind: 'file', source: '/sys/kernel/notes', access: 'readWrite'}], 'disks[0].image', '"/sys/kernel/notes" cannot be opened for reading and writing: permission denied'],
		['a descriptor that is not open', () => [readable(3, 'kernel', kernel), readable(4, 'disks[0].image', 999)], 'disks[0].image', 'descriptor 999 is not open'],
		['a console in a missing directory', () => [readable(3, 'kernel', kernel), {childFd: 4, role: 'console', field: 'consoleOutput', kind: 'file', source: join(dir, 'nope', 'c.txt'), access: 'append'}], 'consoleOutput', `${JSON.stringify(join(dir, 'nope', 'c.txt'))} does not exist, and the file policy does not let vmwarden create outputs`],
	])('%s', (_name, plan, field, reason) => {
		const before = openDescriptorCount();
		let thrown: unknown;
		try {
			openDescriptors(plan(), {allowHostDescriptors: true});
		} catch (error) {
			thrown = error;
		}

		expect(thrown).toBeInstanceOf(InvalidConfigError);
		expect(thrown).toMatchObject({field, reason});
		expect(openDescriptorCount()).toBe(before);
	});

	test('a closed FileHandle', async () => {
		const handle = await open(kernel, 'r');
		await handle.close();
		const before = openDescriptorCount();
		expect(() => openDescriptors([readable(3, 'disks[0].image', image), {childFd: 4, role: 'kernel', field: 'kernel', kind: 'file', source: handle, access: 'read'}]))
			.toThrow(expect.objectContaining({field: 'kernel', reason: 'the FileHandle is closed'}) as Error);
		expect(openDescriptorCount()).toBe(before);
	});

	test('a plan that is not contiguous from 3', () => {
		const before = openDescriptorCount();
		expect(() => openDescriptors([readable(3, 'kernel', kernel), readable(5, 'initrd', kernel)])).toThrow(VmwardenError);
		expect(openDescriptorCount()).toBe(before);
	});
});
