/**
 * Runs in every test file (jest's setupFilesAfterEnv). Each file has its own module registry, so its
 * own spawner process: one still idling when the file ends would close its IPC socket during the
 * next file's tests and spoil their descriptor baselines.
 */
import {afterAll} from '@jest/globals';
import {closeIdleSpawner} from '../../src/services/vmm/spawn/spawner.js';

afterAll(async () => {
	await closeIdleSpawner();
});
