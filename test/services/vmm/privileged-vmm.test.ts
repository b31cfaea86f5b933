import {chmodSync, chownSync, copyFileSync, mkdtempSync, rmSync} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {afterAll, describe, expect, test} from '@jest/globals';
import {resolveVmmPath} from '../../../src/services/vmm/process.js';

// The kernel drops the parent-death signal when an exec changes the credentials (prctl(2),
// PR_SET_PDEATHSIG): a VMM that would run as another user or group could outlive its host.
const work = mkdtempSync(path.join(os.tmpdir(), 'vmwarden-privileged-'));
afterAll(() => {
	rmSync(work, {recursive: true, force: true});
});

function vmm(name: string, mode: number, owner: {uid: number; gid: number}): string {
	const file = path.join(work, name);
	copyFileSync('/bin/true', file);
	chownSync(file, owner.uid, owner.gid);
	// chown clears the set-ID bits: set the mode last.
	chmodSync(file, mode);
	return file;
}

const self = {uid: process.geteuid!(), gid: process.getegid!()};
const other = {uid: self.uid + 4242, gid: self.gid + 4242};

describe('a VMM that would run with other credentials', () => {
	test.each([
		['set-user-ID, another owner', 0o4755, {uid: other.uid, gid: self.gid}, /set-user-ID/],
		['set-group-ID, another group', 0o2755, {uid: self.uid, gid: other.gid}, /set-group-ID/],
	])('%s: refused with VMM_PRIVILEGED before anything is spawned', (name, mode, owner, message) => {
		const file = vmm(name.replaceAll(/\W+/g, '-'), mode, owner);
		expect(() => resolveVmmPath(file)).toThrow(expect.objectContaining({code: 'VMM_PRIVILEGED', message: expect.stringMatching(message)}));
	});

	test.each([
		['set-user-ID, owned by this user', 0o4755, self],
		['set-group-ID, of this group', 0o2755, self],
		['no set-ID bit, another owner', 0o755, other],
	])('%s: the credentials do not change, so it is accepted', (name, mode, owner) => {
		const file = vmm(name.replaceAll(/\W+/g, '-'), mode, owner);
		expect(resolveVmmPath(file)).toBe(file);
	});
});
