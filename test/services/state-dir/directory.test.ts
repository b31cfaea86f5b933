import {chmodSync, chownSync, existsSync, lstatSync, mkdirSync, symlinkSync, writeFileSync} from 'node:fs';
import {join} from 'node:path';
import {InvalidConfigError} from '../../../src/errors.js';
import {ensureStateDir} from '../../../src/services/state-dir/directory.js';
import {openStateDir} from '../../../src/services/state-dir/open.js';
import {OTHER_UID, useStateDirFixture} from './fixtures/state-dir-fixture.js';

const {makeFolder} = useStateDirFixture();

function refusal(action: () => unknown): InvalidConfigError {
	try {
		action();
	} catch (error) {
		expect(error).toBeInstanceOf(InvalidConfigError);
		expect((error as InvalidConfigError).field).toBe('stateDir');
		return error as InvalidConfigError;
	}

	throw new Error('expected a refusal');
}

describe('the state directory is private to this user', () => {
	test('a missing directory is created 0700 with its missing parents, and its vms folder too', () => {
		const stateDir = join(makeFolder(), 'a', 'b', 'state');
		ensureStateDir(stateDir);
		for (const folder of [join(stateDir, '..', '..'), join(stateDir, '..'), stateDir, join(stateDir, 'vms')]) {
			const stats = lstatSync(folder);
			expect(stats.isDirectory()).toBe(true);
			expect(stats.mode & 0o777).toBe(0o700);
			expect(stats.uid).toBe(process.geteuid!());
		}
	});

	test('a directory another user owns is refused, naming the owner', () => {
		const stateDir = makeFolder();
		chownSync(stateDir, OTHER_UID, OTHER_UID);
		expect(refusal(() => openStateDir(stateDir)).reason).toMatch(/owned by uid 12345/);
		expect(existsSync(join(stateDir, 'supervisor.lock'))).toBe(false);
	});

	test('a directory writable by its group or by others is refused', () => {
		const stateDir = makeFolder();
		chmodSync(stateDir, 0o770);
		expect(refusal(() => openStateDir(stateDir)).reason).toMatch(/writable by its group \(mode 0770\)/);
		chmodSync(stateDir, 0o702);
		expect(refusal(() => openStateDir(stateDir)).reason).toMatch(/writable by others/);
	});

	test('a symbolic link is refused, even to a private directory of ours', () => {
		const real = makeFolder();
		const link = join(makeFolder(), 'state');
		symlinkSync(real, link);
		expect(refusal(() => openStateDir(link)).reason).toMatch(/is a symbolic link/);
		expect(existsSync(join(real, 'supervisor.lock'))).toBe(false);
	});

	test('the vms folder follows the same rule', () => {
		const foreign = makeFolder();
		mkdirSync(join(foreign, 'vms'));
		chownSync(join(foreign, 'vms'), OTHER_UID, OTHER_UID);
		expect(refusal(() => openStateDir(foreign)).reason).toMatch(/vms is owned by uid 12345/);

		const linked = makeFolder();
		symlinkSync(makeFolder(), join(linked, 'vms'));
		expect(refusal(() => openStateDir(linked)).reason).toMatch(/vms is a symbolic link/);

		const file = makeFolder();
		mkdirSync(join(file, 'vms'), {mode: 0o777});
		chmodSync(join(file, 'vms'), 0o777);
		expect(refusal(() => openStateDir(file)).reason).toMatch(/vms is writable by its group/);
	});

	test('a directory below a folder another user can change is refused, and nothing is created there', () => {
		const parent = makeFolder();
		chownSync(parent, OTHER_UID, OTHER_UID);
		expect(refusal(() => openStateDir(join(parent, 'state'))).reason).toMatch(/parent folder .* is owned by uid 12345/);
		expect(existsSync(join(parent, 'state'))).toBe(false);

		const open = makeFolder();
		chmodSync(open, 0o777);
		expect(refusal(() => openStateDir(join(open, 'state'))).reason).toMatch(/writable by others and not sticky/);
		// The sticky bit (as on /tmp) makes a shared parent safe: others cannot rename our folder.
		chmodSync(open, 0o1777);
		openStateDir(join(open, 'state')).release();
	});

	test('a path through a file, or a file itself, is refused with the reason', () => {
		const folder = makeFolder();
		writeFileSync(join(folder, 'file'), '');
		expect(refusal(() => ensureStateDir(join(folder, 'file', 'state'))).reason).toMatch(/ENOTDIR/);
		expect(refusal(() => ensureStateDir(join(folder, 'file'))).reason).toMatch(/is not a directory/);
	});
});
