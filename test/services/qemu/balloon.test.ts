import {afterAll, beforeAll, describe, expect, test} from '@jest/globals';
import {InvalidConfigError, VmControlError, VmControlUnsupportedError} from '../../../src/errors.js';
import {createQemuDriver, QEMU_DEFAULT_MEMORY_BYTES} from '../../../src/services/qemu/driver.js';
import type {VmmControlContext} from '../../../src/services/vmm/driver.js';
import {GREETING, RETURN, startQmpPeer} from './qmp-peer.js';
import {defaultVmmEnvironment} from '../../../src/services/vmm/vmm-environment.js';

const MIB = 1024 * 1024;
const driver = createQemuDriver({controlTimeoutMs: 2000});
let peer: Awaited<ReturnType<typeof startQmpPeer>>;

beforeAll(async () => {
	peer = await startQmpPeer();
});

afterAll(async () => {
	await peer.close();
});

function context(fields: Partial<VmmControlContext> = {}): VmmControlContext {
	return {vmmPath: 'qemu-system-x86_64', environment: defaultVmmEnvironment(), tempDir: '/nonexistent', pid: 1, controlSocket: peer.socketPath, balloon: true, ...fields};
}

/** A peer that answers capabilities, then the command with `reply`; returns what it was sent. */
function answer(reply: string): () => string {
	let received = () => '';
	peer.play((socket, read) => {
		received = read;
		socket.write(GREETING);
		socket.on('data', chunk => {
			socket.write(chunk.toString().includes('qmp_capabilities') ? RETURN : `${reply}\n`);
		});
	});
	return () => received();
}

describe('setBalloon on QEMU: QMP balloon with the memory the guest keeps', () => {
	test.each([
		[256 * MIB, 64 * MIB, 192 * MIB],
		[256 * MIB, 0, 256 * MIB],
		[undefined, 64 * MIB, QEMU_DEFAULT_MEMORY_BYTES - (64 * MIB)],
	])('configured %p, balloon %p: value %p', async (memoryBytes, bytes, value) => {
		const received = answer(RETURN.trim());
		await driver.setBalloon!(context({memoryBytes}), bytes);
		expect(received()).toBe(`{"execute":"qmp_capabilities"}\n{"execute":"balloon","arguments":{"value":${value}}}\n`);
	});

	test('a balloon as large as the guest memory is refused before QMP is asked', async () => {
		const before = peer.connections();
		await expect(driver.setBalloon!(context({memoryBytes: 64 * MIB}), 64 * MIB)).rejects.toThrow(new InvalidConfigError('bytes', `must be less than the guest memory (${64 * MIB} bytes)`));
		expect(peer.connections()).toBe(before);
	});

	test('QEMU\'s refusal is a VmControlError', async () => {
		answer('{"error": {"class": "DeviceNotActive", "desc": "No balloon device has been activated"}}');
		await expect(driver.setBalloon!(context(), MIB)).rejects.toThrow(VmControlError);
	});
});

describe('balloonStats on QEMU: QMP query-balloon', () => {
	test('the balloon is the configured memory less what the guest has; no guest statistics', async () => {
		const received = answer(`{"return": {"actual": ${192 * MIB}}}`);
		await expect(driver.balloonStats!(context({memoryBytes: 256 * MIB}))).resolves.toEqual({actualBytes: 64 * MIB, stats: {}});
		expect(received()).toBe('{"execute":"qmp_capabilities"}\n{"execute":"query-balloon"}\n');
	});

	test.each([
		['{"return": {}}'],
		['{"return": null}'],
		['{"return": [1]}'],
		['{"return": {"actual": -1}}'],
		['{"return": {"actual": 1.5}}'],
		['{"return": {"actual": "134217728"}}'],
		['{"return": {"actual": 1e300}}'],
		[`{"return": {"actual": ${QEMU_DEFAULT_MEMORY_BYTES + 1}}}`],
	])('%s is refused with a VmControlError', async reply => {
		answer(reply);
		await expect(driver.balloonStats!(context())).rejects.toThrow(VmControlError);
	});
});

describe('a QEMU VM without balloon: true has no balloon device', () => {
	test.each([[false], [undefined]])('balloon %p: both operations are unsupported, QMP is not asked', async balloon => {
		const before = peer.connections();
		await expect(driver.setBalloon!(context({balloon}), MIB)).rejects.toThrow(VmControlUnsupportedError);
		await expect(driver.balloonStats!(context({balloon}))).rejects.toThrow(VmControlUnsupportedError);
		expect(peer.connections()).toBe(before);
	});

	test('a memory size that is not whole positive bytes is a VmControlError', async () => {
		await expect(driver.balloonStats!(context({memoryBytes: 0}))).rejects.toThrow(VmControlError);
		await expect(driver.setBalloon!(context({memoryBytes: 1.5}), 0)).rejects.toThrow(VmControlError);
	});
});
