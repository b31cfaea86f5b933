import {once} from 'node:events';
import {existsSync, readdirSync} from 'node:fs';
import {createConnection, createServer, type Socket} from 'node:net';
import {setTimeout as delay} from 'node:timers/promises';
import {execa} from 'execa';
import {makeScratch, runSim, SIM} from '../helpers/sim-process.js';

const scratch = makeScratch();

afterAll(scratch.remove);

/** Starts a VM with a control socket and waits until its guest wrote its first console line. */
async function startVm(socket: string, ...lines: string[]) {
	const guest = scratch.guest(`guest-${readdirSync(scratch.dir).length}`, 'console up', ...lines);
	const vm = execa(SIM, ['--extended-status', 'run', '--socket', socket, '--serial', 'type=stdout', guest], {reject: false});
	const console = {text: ''};
	vm.stdout.on('data', (chunk: Buffer) => {
		console.text += String(chunk);
	});
	await once(vm.stdout, 'data');
	// Wrapped: returning the thenable subprocess from an async function would wait for its end.
	return {vm, console};
}

async function waitFor(condition: () => boolean): Promise<void> {
	while (!condition()) {
		await delay(20);
	}
}

test('stop: the VM answers Ok and exits 0 (also with --extended-status), and removes its socket', async () => {
	const socket = scratch.path('stop.sock');
	const {vm} = await startVm(socket, 'hang');
	expect(existsSync(socket)).toBe(true);
	const stop = await runSim(['stop', socket]);
	expect(stop.exitCode).toBe(0);
	const result = await vm;
	expect(result.exitCode).toBe(0);
	expect(result.stderr).toContain('exiting with stop');
	expect(existsSync(socket)).toBe(false);
});

test('stop interrupts a guest that is still sleeping', async () => {
	const socket = scratch.path('sleeping.sock');
	const {vm} = await startVm(socket, 'sleep 60000', 'reboot');
	expect((await runSim(['stop', socket])).exitCode).toBe(0);
	expect((await vm).exitCode).toBe(0);
});

test('a directory as --socket gets crosvm-<pid>.sock', async () => {
	const directory = scratch.path('');
	const {vm} = await startVm(directory, 'hang');
	const socket = `${directory}/crosvm-${vm.pid}.sock`;
	expect(existsSync(socket)).toBe(true);
	expect((await runSim(['stop', socket])).exitCode).toBe(0);
	expect((await vm).exitCode).toBe(0);
	expect(existsSync(socket)).toBe(false);
});

/** How long the suspend test's guest sleeps after its first line. */
const SUSPEND_SLEEP_MS = 3000;

test('suspend pauses the guest, resume lets it go on', async () => {
	const socket = scratch.path('suspend.sock');
	// The sleep leaves time for `crosvm-sim suspend` (a Node process) to start on a loaded machine:
	// a suspend that came after the sleep's end would not be tested.
	const {vm, console} = await startVm(socket, `sleep ${SUSPEND_SLEEP_MS}`, 'console after the sleep', 'hang');
	const up = Date.now();
	try {
		expect((await runSim(['suspend', socket])).exitCode).toBe(0);
		expect(Date.now() - up).toBeLessThan(SUSPEND_SLEEP_MS);
		// Half a second past the sleep's end.
		await delay(up + SUSPEND_SLEEP_MS + 500 - Date.now());
		// Suspended: the guest did not get past its sleep.
		expect(console.text).toBe('up\n');
		expect((await runSim(['resume', socket])).exitCode).toBe(0);
		await waitFor(() => console.text.includes('after'));
		expect(console.text).toBe('up\nafter the sleep\n');
		expect((await runSim(['stop', socket])).exitCode).toBe(0);
		expect((await vm).exitCode).toBe(0);
	} finally {
		// A failed expectation must not leave the hanging guest behind to hold Jest open.
		vm.kill('SIGKILL');
	}
});

test('ignore-stop: a wedged VMM never answers; crosvm stop waits, the VM keeps running', async () => {
	const socket = scratch.path('wedged.sock');
	const {vm} = await startVm(socket, 'ignore-stop', 'hang');
	const stop = execa(SIM, ['stop', socket], {reject: false});
	await delay(1000);
	expect(stop.exitCode).toBeNull();
	expect(vm.exitCode).toBeNull();
	stop.kill('SIGKILL');
	expect((await stop).signal).toBe('SIGKILL');
	vm.kill('SIGKILL');
	expect((await vm).signal).toBe('SIGKILL');
	// Killed, not exited: like crosvm, the socket file stays behind.
	expect(existsSync(socket)).toBe(true);
});

test('ignore-stop as the first directive holds from the moment the socket listens: a stop sent at once is not answered', async () => {
	const socket = scratch.path('early.sock');
	const guest = scratch.guest('early-guest', 'ignore-stop', 'hang');
	const vm = execa(SIM, ['--extended-status', 'run', '--socket', socket, guest], {reject: false});
	try {
		// The stop goes out as soon as the socket file exists (bound and listening in one step).
		const deadline = Date.now() + 10_000;
		while (!existsSync(socket) && vm.exitCode === null && Date.now() < deadline) {
			await delay(1);
		}

		// The file appears at the bind, a moment before the listen: refused until then, so again at once.
		const connect = async () => new Promise<Socket | undefined>(resolve => {
			const attempt = createConnection(socket);
			attempt.once('connect', () => {
				resolve(attempt);
			});
			attempt.once('error', () => {
				attempt.destroy();
				resolve(undefined);
			});
		});
		let client = await connect();
		while (client === undefined && vm.exitCode === null && Date.now() < deadline) {
			client = await connect();
		}

		const connected = client !== undefined;
		let answer = '';
		client?.on('data', (chunk: Buffer) => {
			answer += String(chunk);
		});
		client?.on('error', () => {
			// The VM's end, below.
		});
		client?.write('"Exit"\n');
		await delay(1000);
		expect({connected, answer, exitCode: vm.exitCode}).toEqual({connected: true, answer: '', exitCode: null});
		client?.destroy();
	} finally {
		vm.kill('SIGKILL');
		await vm;
	}
});

test('a stale socket file left by a killed VM, or any file at --socket, makes the start fail (exit 1)', async () => {
	const socket = scratch.path('stale.sock');
	const {vm} = await startVm(socket, 'hang');
	vm.kill('SIGKILL');
	await vm;
	expect(existsSync(socket)).toBe(true);
	for (const path of [socket, scratch.file('plain-file.sock', '')]) {
		const result = await runSim(['run', '--socket', path, scratch.guest('stale-guest', 'console must not run', 'poweroff')]);
		expect(result.exitCode).toBe(1);
		expect(result.stderr).toContain('failed to create control server: Address in use (os error 98)');
		expect(result.stdout).toBe('');
		// The simulator did not remove what it did not create.
		expect(existsSync(path)).toBe(true);
	}
});

test('stop against a socket nobody listens on, or one that answers otherwise, exits 1', async () => {
	const nobody = await runSim(['stop', scratch.path('nobody.sock')]);
	expect(nobody.exitCode).toBe(1);

	const other = scratch.path('other.sock');
	const server = createServer(socket => {
		socket.end('{"Err":"busy"}\n');
	});
	await new Promise<void>(resolve => {
		server.listen(other, resolve);
	});
	try {
		const result = await runSim(['stop', other]);
		expect(result.exitCode).toBe(1);
		expect(result.stderr).toContain('unexpected response: {"Err":"busy"}');
	} finally {
		server.close();
	}
});

test('a VM that powers off by itself removes its socket too', async () => {
	const socket = scratch.path('poweroff.sock');
	const result = await runSim(['--extended-status', 'run', '--socket', socket, scratch.guest('poweroff-socket', 'reboot')]);
	expect(result.exitCode).toBe(32);
	expect(existsSync(socket)).toBe(false);
});
