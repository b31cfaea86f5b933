import {join} from 'node:path';
import {ensurePrivateDir} from './private-dir.js';
import {VM_RECORDS_DIR} from './records.js';

/**
 * Makes sure the state directory and its `vms/` folder exist (created 0700 with any missing
 * parent) and that only this process's user can change them. Throws `InvalidConfigError` naming
 * `stateDir` with the reason: a symbolic link, another owner, writable by group or others, or
 * below a folder another user can change.
 */
export function ensureStateDir(stateDir: string): void {
	ensurePrivateDir(stateDir, 'stateDir');
	ensurePrivateDir(join(stateDir, VM_RECORDS_DIR), 'stateDir');
}
