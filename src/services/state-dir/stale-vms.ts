/**
 * The state directory's API in one import: the directory check, the lock, the VM records and the
 * reaper, each in its own module.
 */
export {ensureStateDir} from './directory.js';
export {LOCK_FILE, claimStateDir} from './lock.js';
export {openStateDir, type OpenedStateDir} from './open.js';
export {VM_RECORDS_DIR, readVmRecords, removeVmRecord, writeVmRecord, type StaleVmEntry, type VmRecord} from './records.js';
export {reapStaleVms, reapStateDir, type HeldStaleVmOutcome, type ReapOptions, type ReapedVm, type StaleVmOutcome, type StaleVmReport} from './reap.js';
export type {StateDirWrite} from './files.js';
