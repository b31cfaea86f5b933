import {chmodSync, existsSync, lstatSync, mkdirSync} from 'node:fs';
import {join} from 'node:path';
import {afterAll, beforeAll, describe, expect, test} from '@jest/globals';
import {call, DaemonError, openRequest} from '../../src/cli/client.js';
import {alive, cliScratch, requireBuild, SIM, spawnVmwarden, vmwarden, waitForText, waitUntil, type CliScratch} from './cli-process.js';

interface VmJson {
	cid: number;
	state: string;
	payloadState: string;
	pid: number | null;
	death: {reason: string; initiator: string} | null;
}

type Daemon = ReturnType<typeof spawnVmwarden>;

/** Resolves once the daemon serves; wrapped, as awaiting the subprocess itself would wait for its end. */
async function startDaemon(scratch: CliScratch, socket: string, ...options: string[]): Promise<{daemon: Daemon}> {
	const daemon = spawnVmwarden(['serve', '--socket', socket, '--vmm', SIM, '--stop-timeout', '3000', ...options], scratch.env(), 300_000);
	await waitForText(daemon.stderr, /Serving on/);
	return {daemon};
}

/** `vmwarden start` of a guest that runs until stopped; resolves with the VM as the daemon shows it. */
async function startHangingVm(scratch: CliScratch, socket: string, name: string, guest: string[] = ['payload started'], ...options: string[]): Promise<VmJson> {
	const config = scratch.config(`${name}.json`, {kernel: scratch.guest(`${name}.guest`, ...guest, 'hang')});
	const result = await vmwarden(['start', config, '--socket', socket, '--json', ...options], scratch.env());
	expect(result.exitCode).toBe(0);
	return JSON.parse(result.stdout) as VmJson;
}

/** `vmwarden events --json`, every line kept from the start, so that no event is missed between waits. */
function followEvents(scratch: CliScratch, socket: string) {
	const process = spawnVmwarden(['events', '--socket', socket, '--json'], scratch.env());
	const seen: Record<string, unknown>[] = [];
	const waiters = new Set<() => void>();
	let buffered = '';
	process.stdout.on('data', (chunk: Buffer) => {
		buffered += chunk.toString();
		const lines = buffered.split('\n');
		buffered = lines.pop() ?? '';
		seen.push(...lines.map(line => JSON.parse(line) as Record<string, unknown>));
		for (const waiter of waiters) {
			waiter();
		}
	});

	/** Resolves with every event so far once one matches `done`; rejects if the stream ends first. */
	const until = async (done: (event: Record<string, unknown>) => boolean): Promise<Record<string, unknown>[]> => new Promise((resolve, reject) => {
		const check = () => {
			if (seen.some(event => done(event))) {
				waiters.delete(check);
				resolve([...seen]);
			}
		};

		waiters.add(check);
		check();
		void process.then(() => {
			if (waiters.delete(check)) {
				reject(new Error(`the stream ended first: ${JSON.stringify(seen)}`));
			}
		});
	});

	return {process, until};
}

/** What a console stream of the daemon carries at once: read for 200 ms, then dropped. */
async function consoleStart(socket: string, cid: number): Promise<string> {
	const response = await openRequest(socket, 'GET', `/v1/vms/${cid}/console`);
	let text = '';
	response.on('data', (chunk: Buffer) => {
		text += chunk.toString();
	});
	await new Promise(resolve => {
		setTimeout(resolve, 200);
	});
	response.destroy();
	return text;
}

beforeAll(requireBuild);

describe('vmwarden serve: the API and its clients', () => {
	let scratch: CliScratch;
	let socket: string;
	let daemon: Daemon;
	beforeAll(async () => {
		scratch = cliScratch();
		socket = join(scratch.dir, 'vmwarden.sock');
		({daemon} = await startDaemon(scratch, socket, '--allow-dir', scratch.dir));
	});
	afterAll(async () => {
		daemon.kill('SIGTERM');
		const result = await daemon;
		const leftovers = scratch.leftovers();
		scratch.remove();
		expect(result.exitCode).toBe(0);
		expect(leftovers).toEqual([]);
	});

	test('the socket is the owner\'s only', () => {
		const stats = lstatSync(socket);
		expect(stats.isSocket()).toBe(true);
		expect(stats.mode & 0o777).toBe(0o600);
	});

	test('GET /v1/health', async () => {
		expect(await call(socket, 'GET', '/v1/health')).toEqual({status: 'ok', pid: daemon.pid, vms: 0, reaped: []});
	});

	test('start, list, info, stop, and the event stream', async () => {
		const events = followEvents(scratch, socket);
		await events.until(event => event['type'] === 'hello');
		const vm = await startHangingVm(scratch, socket, 'stop-me');
		expect(vm).toMatchObject({state: 'Running', death: null});
		expect(alive(vm.pid ?? -1)).toBe(true);

		const list = await vmwarden(['list', '--socket', socket], scratch.env());
		expect(list.stdout.split('\n')[0]).toMatch(/^CID\s+STATE\s+PAYLOAD\s+PID\s+DEATH$/);
		expect(list.stdout).toMatch(new RegExp(`^${vm.cid}\\s+Running\\s+\\w+\\s+${vm.pid}`, 'm'));
		const listJson = JSON.parse((await vmwarden(['list', '--socket', socket, '--json'], scratch.env())).stdout) as {vms: VmJson[]};
		expect(listJson.vms.map(listed => listed.cid)).toEqual([vm.cid]);
		const info = await vmwarden(['info', String(vm.cid), '--socket', socket], scratch.env());
		expect(info.stdout).toContain('state    Running');

		const stop = await vmwarden(['stop', String(vm.cid), '--socket', socket, '--json'], scratch.env());
		expect(JSON.parse(stop.stdout)).toMatchObject({cid: vm.cid, state: 'Dead', death: {reason: 'SHUTDOWN', initiator: 'caller'}});
		const seen = await events.until(event => event['type'] === 'supervisor.cid.released' && event['cid'] === vm.cid);
		expect(seen.map(event => event['type'])).toEqual(expect.arrayContaining(['supervisor.cid.allocated', 'started', 'stopping', 'died', 'supervisor.cid.released']));
		expect(seen.find(event => event['type'] === 'died')).toMatchObject({cid: vm.cid, death: {reason: 'SHUTDOWN', initiator: 'caller'}});
		events.process.kill('SIGTERM');
		await events.process;

		// A dead VM is still shown, from its death record.
		const afterDeath = JSON.parse((await vmwarden(['info', String(vm.cid), '--socket', socket, '--json'], scratch.env())).stdout) as VmJson;
		expect(afterDeath).toMatchObject({state: 'Dead', pid: null, death: {reason: 'SHUTDOWN'}});
		expect(alive(vm.pid ?? -1)).toBe(false);
	});

	test('kill, and events --cid keeps that VM\'s events only', async () => {
		const vm = await startHangingVm(scratch, socket, 'kill-me');
		const other = await startHangingVm(scratch, socket, 'other');
		const events = spawnVmwarden(['events', '--socket', socket, '--cid', String(vm.cid)], scratch.env());
		let text = '';
		events.stdout.on('data', (chunk: Buffer) => {
			text += chunk.toString();
		});
		expect(await waitUntil(() => text.includes('hello'), 10_000)).toBe(true);
		const kill = await vmwarden(['kill', String(vm.cid), '--socket', socket], scratch.env());
		expect(kill.exitCode).toBe(0);
		expect(kill.stdout).toBe(`VM ${vm.cid}: Dead, KILLED (caller SIGKILL)`);
		await vmwarden(['kill', String(other.cid), '--socket', socket], scratch.env());
		expect(await waitUntil(() => text.includes(`${vm.cid}  supervisor.cid.released`), 10_000)).toBe(true);
		events.kill('SIGTERM');
		await events;
		expect(text).toMatch(new RegExp(`${vm.cid}  killing  pid=${vm.pid}`));
		expect(text).toMatch(new RegExp(`${vm.cid}  died  KILLED \\(caller SIGKILL\\)`));
		expect(text).not.toContain(`  ${other.cid}  `);
	});

	test('console: the kept lines, then the live ones until the VM dies; afterwards, its death\'s tail', async () => {
		const vm = await startHangingVm(scratch, socket, 'talker', ['console first line', 'console second \u001b[1mline', 'payload started', 'sleep 3000', 'console later line']);
		// The console and the payload channel are separate pipes: wait until the daemon kept both lines.
		expect(await waitUntil(async () => (await consoleStart(socket, vm.cid)).includes('"second \\u001b[1mline","tail":true}'), 10_000)).toBe(true);
		const follower = spawnVmwarden(['console', String(vm.cid), '--socket', socket, '--json'], scratch.env());
		const streamed = await waitForText(follower.stdout, /later line/);
		expect(streamed.trim().split('\n').map(line => JSON.parse(line) as unknown)).toEqual([
			{type: 'hello', cid: vm.cid},
			{type: 'line', text: 'first line', tail: true},
			{type: 'line', text: 'second \u001b[1mline', tail: true},
			{type: 'line', text: 'later line', tail: false},
		]);
		// The stream ends with the VM's console: the client exits by itself.
		await vmwarden(['stop', String(vm.cid), '--socket', socket], scratch.env());
		expect((await follower).exitCode).toBe(0);

		// Once its CID is released, from the death record; for people, the guest's text as it wrote it.
		expect(await waitUntil(async () => !((await call(socket, 'GET', '/v1/vms')) as {vms: VmJson[]}).vms.some(listed => listed.cid === vm.cid), 10_000)).toBe(true);
		const after = await vmwarden(['console', String(vm.cid), '--socket', socket], scratch.env());
		expect(after.exitCode).toBe(0);
		expect(after.stdout).toBe('first line\nsecond \u001b[1mline\nlater line');
	});

	test('console of a VM started without its console captured: 409, and of an unknown CID: 404', async () => {
		const vm = await startHangingVm(scratch, socket, 'mute', ['console unseen', 'payload started'], '--no-capture-console');
		const refused = await vmwarden(['console', String(vm.cid), '--socket', socket, '--json'], scratch.env());
		expect(refused.exitCode).toBe(1);
		expect(JSON.parse(refused.stdout)).toMatchObject({error: {code: 'CONSOLE_NOT_CAPTURED'}});
		await vmwarden(['kill', String(vm.cid), '--socket', socket], scratch.env());
		const unknown = await vmwarden(['console', '9999', '--socket', socket], scratch.env());
		expect(unknown.exitCode).toBe(1);
		expect(unknown.stderr).toContain('no VM with CID 9999');
	});

	test('GET /metrics: Prometheus text, counting the daemon\'s VMs', async () => {
		const vm = await startHangingVm(scratch, socket, 'counted');
		await vmwarden(['stop', String(vm.cid), '--socket', socket], scratch.env());
		const response = await openRequest(socket, 'GET', '/metrics');
		let text = '';
		for await (const chunk of response) {
			text += (chunk as Buffer).toString();
		}

		expect(response.statusCode).toBe(200);
		expect(response.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
		expect(text).toContain('# TYPE vmwarden_vm_starts_total counter');
		expect(Number(/^vmwarden_vm_starts_total (\d+)$/m.exec(text)?.[1])).toBeGreaterThanOrEqual(1);
		expect(Number(/^vmwarden_vm_deaths_total\{reason="SHUTDOWN"\} (\d+)$/m.exec(text)?.[1])).toBeGreaterThanOrEqual(1);
		expect(text).toMatch(/^vmwarden_vm_stop_seconds_count \d+$/m);
		expect(text).toMatch(/^vmwarden_cids_free \d+$/m);
	});

	test('an unknown CID: 404, and the client exits 1', async () => {
		await expect(call(socket, 'GET', '/v1/vms/9999')).rejects.toMatchObject({status: 404});
		const info = await vmwarden(['info', '9999', '--socket', socket], scratch.env());
		expect(info.exitCode).toBe(1);
		expect(info.stderr).toContain('no VM with CID 9999');
		const stop = await vmwarden(['stop', '9999', '--socket', socket, '--json'], scratch.env());
		expect(stop.exitCode).toBe(1);
		expect(JSON.parse(stop.stdout)).toEqual({error: {code: 'NOT_FOUND', message: 'no VM with CID 9999'}});
	});

	test.each([
		['a field no config has', {config: {kernel: '/k', kernal: '/k'}}, 400, 'BAD_REQUEST'],
		['a string for a number', {config: {kernel: '/k', memoryMib: '64'}}, 400, 'BAD_REQUEST'],
		['no config', {}, 400, 'BAD_REQUEST'],
		['a relative path', {config: {kernel: 'k'}}, 400, 'BAD_REQUEST'],
	])('POST /v1/vms with %s: refused by the schema', async (_what, body, status, code) => {
		const error = await call(socket, 'POST', '/v1/vms', body).then(() => undefined, (caught: unknown) => caught);
		expect(error).toBeInstanceOf(DaemonError);
		expect(error).toMatchObject({status, body: {error: {code}}});
	});

	test('POST /v1/vms with a body over 1 MiB: refused before it is read, and the daemon stays up', async () => {
		const error = await call(socket, 'POST', '/v1/vms', {config: {kernel: '/k', params: 'x'.repeat(1100 * 1024)}}).then(() => undefined, (caught: unknown) => caught);
		// The daemon answers 413 from the declared length; it may close the connection while the
		// client is still writing the body, which the client then sees as a reset instead.
		if (error instanceof DaemonError) {
			expect(error).toMatchObject({status: 413, body: {error: {code: 'BAD_REQUEST'}}});
		} else {
			expect(error).toMatchObject({code: expect.stringMatching(/^(EPIPE|ECONNRESET)$/)});
		}

		await expect(call(socket, 'GET', '/v1/health')).resolves.toBeDefined();
	});

	test('POST /v1/vms with a file outside --allow-dir: refused by the file policy, naming the field', async () => {
		const error = await call(socket, 'POST', '/v1/vms', {config: {kernel: SIM}}).then(() => undefined, (caught: unknown) => caught);
		expect(error).toMatchObject({status: 400, body: {error: {code: 'INVALID_CONFIG', field: 'kernel'}}});
		expect((await call(socket, 'GET', '/v1/vms')) as {vms: unknown[]}).toEqual({vms: []});
	});

	test('a second daemon on the live socket is refused, and the first one still serves', async () => {
		const second = await vmwarden(['serve', '--socket', socket, '--vmm', SIM], scratch.env());
		expect(second.exitCode).toBe(1);
		expect(second.stderr).toContain(`another daemon listens on ${socket}: it is not taken over`);
		expect(await call(socket, 'GET', '/v1/health')).toMatchObject({status: 'ok', pid: daemon.pid});
	});

	test('a socket directory other users may write is refused', async () => {
		const shared = join(scratch.dir, 'shared');
		mkdirSync(shared);
		chmodSync(shared, 0o777);
		const result = await vmwarden(['serve', '--socket', join(shared, 'vmwarden.sock'), '--vmm', SIM], scratch.env());
		expect(result.exitCode).toBe(1);
		expect(result.stderr).toContain(`${shared} may be written by other users`);
		expect(existsSync(join(shared, 'vmwarden.sock'))).toBe(false);
	});

	test('no daemon on the socket: a clear message, exit 69', async () => {
		const result = await vmwarden(['list', '--socket', join(scratch.dir, 'nobody.sock')], scratch.env());
		expect(result.exitCode).toBe(69);
		expect(result.stderr).toContain('no vmwarden daemon listens on');
	});
});

describe('vmwarden serve: shutting down and starting again', () => {
	test('SIGTERM stops every running VM, ends the event stream, removes the socket and exits 0', async () => {
		const scratch = cliScratch();
		try {
			const socket = join(scratch.dir, 'vmwarden.sock');
			const {daemon} = await startDaemon(scratch, socket, '--socket-group', String(process.getgid?.() ?? 0));
			expect(lstatSync(socket).mode & 0o777).toBe(0o660);
			const vms = [await startHangingVm(scratch, socket, 'a'), await startHangingVm(scratch, socket, 'b')];
			const events = followEvents(scratch, socket);
			await events.until(event => event['type'] === 'hello');
			daemon.kill('SIGTERM');
			const seen = await events.until(event => event['type'] === 'supervisor.shutdown.completed');
			expect(seen.filter(event => event['type'] === 'died').map(event => (event['death'] as {reason: string}).reason)).toEqual(['SHUTDOWN', 'SHUTDOWN']);
			expect((await events.process).exitCode).toBe(0);
			const result = await daemon;
			expect(result.exitCode).toBe(0);
			expect(result.stderr).toContain('SIGTERM: stopping 2 VM(s)');
			expect(vms.every(vm => !alive(vm.pid ?? -1))).toBe(true);
			expect(existsSync(socket)).toBe(false);
			expect(scratch.leftovers()).toEqual([]);
		} finally {
			scratch.remove();
		}
	});

	test('a daemon killed with SIGKILL: its VMM dies with it, and the next one replaces the stale socket and reaps the state directory', async () => {
		const scratch = cliScratch();
		try {
			const socket = join(scratch.dir, 'vmwarden.sock');
			const stateDir = join(scratch.dir, 'state');
			const {daemon: first} = await startDaemon(scratch, socket, '--state-dir', stateDir);
			const vm = await startHangingVm(scratch, socket, 'orphan');
			first.kill('SIGKILL');
			await first;
			expect(await waitUntil(() => !alive(vm.pid ?? -1))).toBe(true);
			// What the killed daemon left: its socket, and the VM's temporary directory.
			expect(lstatSync(socket).isSocket()).toBe(true);
			expect(scratch.leftovers()).toHaveLength(1);

			const {daemon: second} = await startDaemon(scratch, socket, '--state-dir', stateDir);
			expect(await waitUntil(async () => ((await call(socket, 'GET', '/v1/health')) as {reaped: unknown[]}).reaped.length > 0)).toBe(true);
			const health = await call(socket, 'GET', '/v1/health') as {reaped: {cid: number; outcome: string; cidReleased: boolean; tempDirRemoved: boolean}[]};
			expect(health.reaped).toEqual([expect.objectContaining({cid: vm.cid, outcome: 'gone', cidReleased: true, tempDirRemoved: true})]);
			expect(scratch.leftovers()).toEqual([]);
			second.kill('SIGTERM');
			expect((await second).exitCode).toBe(0);
		} finally {
			scratch.remove();
		}
	});
});
