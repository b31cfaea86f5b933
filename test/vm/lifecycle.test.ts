import {statSync} from 'node:fs';
import path from 'node:path';
import {describe, expect, test} from '@jest/globals';
import {filter, firstValueFrom} from 'rxjs';
import {InvalidConfigError, VmSpawnError, VmStateError} from '../../src/errors.js';
import {DeathReason} from '../../src/services/death/reason.js';
import {createVmHandle, vmOperations} from '../../src/vm.js';
import {PASSED_HOST_PREFIXES, PASSED_HOST_VARIABLES} from '../../src/services/vmm/vmm-environment.js';
import {SIM_PATH, silentLogger, simulatorRunning, useVmFixture, vmmExitSeen} from '../helpers/vm-fixture.js';
import type {VmDeath, VmEvent} from '../../src/types.js';

describe('VM lifecycle', () => {
	const {context, guest, vm, notExecutable} = useVmFixture();

	test('start() resolves once running, with the VMM pid and a private 0700 temporary directory', async () => {
		const machine = vm({kernel: guest('payload started', 'hang')});
		expect(machine.state).toBe('NotStarted');
		await machine.start();
		expect(machine.state).toBe('Running');
		expect(machine.tempDir).toBeDefined();
		expect(path.dirname(machine.tempDir!)).toBe(context.tempRoot);
		expect(statSync(machine.tempDir!).mode & 0o777).toBe(0o700);
		// setpriv execs: the pid becomes the simulator's own, not a wrapper's.
		await simulatorRunning(machine.pid!);
		machine.kill();
		await machine.died;
	});

	test('the VMM runs with the VM\'s vmmEnvironment alone, whatever the host environment holds', async () => {
		process.env['VMWARDEN_TEST_HOST_SECRET'] = 'not for the VMM';
		try {
			const machine = vm({kernel: guest('hang')}, {vmmEnvironment: {PATH: process.env['PATH']!, RUST_BACKTRACE: '1'}});
			await machine.start();
			await simulatorRunning(machine.pid!);
			const {readFileSync} = await import('node:fs');
			const environment = readFileSync(`/proc/${machine.pid}/environ`, 'utf8').split('\0').filter(Boolean).sort();
			expect(environment).toEqual([`PATH=${process.env['PATH']}`, 'RUST_BACKTRACE=1']);
			await expect(machine.stop()).resolves.toMatchObject({reason: DeathReason.SHUTDOWN});
		} finally {
			delete process.env['VMWARDEN_TEST_HOST_SECRET'];
		}
	});

	test('by default the VMM gets the variables defaultVmmEnvironment names, and not the rest', async () => {
		process.env['VMWARDEN_TEST_HOST_SECRET'] = 'not for the VMM';
		const timeZone = process.env['TZ'];
		process.env['TZ'] = 'UTC';
		try {
			const machine = vm({kernel: guest('hang')});
			await machine.start();
			const {readFileSync} = await import('node:fs');
			const names = readFileSync(`/proc/${machine.pid}/environ`, 'utf8').split('\0').filter(Boolean).map(line => line.split('=')[0]);
			const passed = Object.keys(process.env).filter(name => PASSED_HOST_VARIABLES.includes(name) || PASSED_HOST_PREFIXES.some(prefix => name.startsWith(prefix)));
			expect(names.sort()).toEqual(passed.sort());
			expect(names).toContain('TZ');
			machine.kill();
			await machine.died;
		} finally {
			delete process.env['VMWARDEN_TEST_HOST_SECRET'];
			if (timeZone === undefined) {
				delete process.env['TZ'];
			} else {
				process.env['TZ'] = timeZone;
			}
		}
	});

	test('a VMM named without a path is found on the host PATH, and so are its stop and suspend commands, whatever PATH its environment has', async () => {
		// The simulator under a bare name, in a directory only the host's PATH has.
		const bin = path.join(context.scripts, 'bin');
		const {mkdirSync, symlinkSync} = await import('node:fs');
		mkdirSync(bin);
		symlinkSync(SIM_PATH, path.join(bin, 'vmw-crosvm-on-path'));
		const hostPath = process.env['PATH'];
		process.env['PATH'] = `${bin}:${hostPath}`;
		try {
			// The simulator's `env node` needs node on the VMM's PATH; the bare name is not there.
			const machine = vm({kernel: guest('payload started', 'hang')}, {crosvmPath: 'vmw-crosvm-on-path', vmmEnvironment: {PATH: `${path.dirname(process.execPath)}:/usr/bin:/bin`}});
			await machine.start();
			const operations = vmOperations(machine);
			await operations.suspend();
			await operations.resume();
			await expect(machine.stop({timeoutMs: 20_000})).resolves.toMatchObject({reason: DeathReason.SHUTDOWN});
		} finally {
			process.env['PATH'] = hostPath;
		}
	});

	test('a vmmEnvironment that is not one is refused when the VM is created, naming the variable', () => {
		let refused: unknown;
		try {
			vm({kernel: guest('hang')}, {vmmEnvironment: {PATH: '/bin', 'LD-PRELOAD': '/x.so'}});
		} catch (error) {
			refused = error;
		}

		expect(refused).toBeInstanceOf(InvalidConfigError);
		expect(refused).toMatchObject({field: 'vmmEnvironment.LD-PRELOAD'});
	});

	test('a second start() rejects, saying whether the first is still launching, and the VM keeps running', async () => {
		const machine = vm({kernel: guest('hang')});
		const first = machine.start();
		await expect(machine.start()).rejects.toThrow(new VmStateError('VM is already starting: start() was called before'));
		await first;
		await expect(machine.start()).rejects.toThrow(new VmStateError('VM is Running: start() works once, on a VM not yet started'));
		expect(machine.state).toBe('Running');
		machine.kill();
		await machine.died;
		await expect(machine.start()).rejects.toThrow('VM is Dead: start() works once, on a VM not yet started');
	});

	test('stop() before start() resolves undefined and the VM can still be started', async () => {
		const machine = vm({kernel: guest()});
		await expect(machine.stop()).resolves.toBeUndefined();
		expect(machine.state).toBe('NotStarted');
		await machine.start();
		await expect(machine.died).resolves.toMatchObject({reason: DeathReason.SHUTDOWN});
	});

	test('kill() twice kills once; kill() before start and after death does nothing and never throws', async () => {
		const machine = vm({kernel: guest('hang')});
		machine.kill();
		expect(machine.state).toBe('NotStarted');
		await machine.start();
		const kills: VmEvent[] = [];
		machine.events$.subscribe(event => {
			if (event.type === 'killing') {
				kills.push(event);
			}
		});
		machine.kill();
		machine.kill();
		await expect(machine.died).resolves.toMatchObject({reason: DeathReason.KILLED, signal: 'SIGKILL'});
		machine.kill();
		expect(kills).toHaveLength(1);
		expect(machine.state).toBe('Dead');
	});

	test('a missing VMM ends Failed with a typed error', async () => {
		const missing = vm({kernel: guest()}, {crosvmPath: path.join(context.scripts, 'no-such-crosvm')});
		const onPath = vm({kernel: guest()}, {crosvmPath: 'vmwarden-no-such-crosvm'});
		await expect(missing.start()).rejects.toMatchObject({name: 'VmSpawnError', code: 'VMM_NOT_FOUND'});
		await expect(onPath.start()).rejects.toBeInstanceOf(VmSpawnError);
		expect(missing.state).toBe('Failed');
		expect(onPath.state).toBe('Failed');
		await expect(missing.start()).rejects.toThrow('VM is Failed: start() works once, on a VM not yet started');
	});

	test('a non-executable VMM ends Failed with a typed error', async () => {
		const machine = vm({kernel: guest()}, {crosvmPath: notExecutable()});
		const events: VmEvent[] = [];
		machine.events$.subscribe(event => events.push(event));
		const error = await machine.start().catch((error: unknown) => error);
		expect(error).toBeInstanceOf(VmSpawnError);
		expect(error).toMatchObject({code: 'VMM_NOT_EXECUTABLE'});
		expect(machine.state).toBe('Failed');
		expect(events).toEqual([{type: 'failed', cid: machine.cid, initiator: 'caller', error}]);
	});

	test('an invalid config ends Failed with InvalidConfigError and leaves nothing', async () => {
		const machine = vm({kernel: guest(), bootloader: guest()});
		const error = await machine.start().catch((error: unknown) => error);
		expect(error).toBeInstanceOf(InvalidConfigError);
		expect(machine.state).toBe('Failed');
		expect(machine.tempDir).toBeUndefined();
		const unreadable = vm({kernel: path.join(context.scripts, 'no-kernel')});
		await expect(unreadable.start()).rejects.toMatchObject({name: 'InvalidConfigError', field: 'kernel'});
		// A descriptor that is not open is a bad descriptor, refused the same way.
		const closedDescriptor = vm({kernel: 987});
		await expect(closedDescriptor.start()).rejects.toMatchObject({name: 'InvalidConfigError', field: 'kernel'});
		expect(closedDescriptor.state).toBe('Failed');
		// The leak check after the test proves no process, descriptor or temporary directory is left.
	});

	// A kill asked for while starting: test/machines/vm.machine.test.ts (kill while launching).

	test('a handle made for an actor that is already dead takes the death from its snapshot', async () => {
		const machine = vm({kernel: guest('watchdog')});
		await machine.start();
		const death = await machine.died;
		const late = createVmHandle(machine.actor);
		expect(late.state).toBe('Dead');
		await expect(late.died).resolves.toEqual(death);
		await expect(late.stop()).resolves.toEqual(death);
	});

	test('a bad cid is refused before anything exists', () => {
		expect(() => vm({kernel: guest()}, {cid: 2})).toThrow(InvalidConfigError);
	});

	test('death is reported exactly once, to callbacks, the observable and the promise, after the state is Dead', async () => {
		const machine = vm({kernel: guest('payload started', 'sleep 50', 'reboot')});
		const seen: Array<{via: string; state: string; death: VmDeath}> = [];
		machine.onDied(death => seen.push({via: 'callback 1', state: machine.state, death}));
		machine.onDied(death => seen.push({via: 'callback 2', state: machine.state, death}));
		const unsubscribed = machine.onDied(death => seen.push({via: 'removed', state: machine.state, death}));
		unsubscribed();
		let completed = false;
		machine.events$.subscribe({
			next(event) {
				if (event.type === 'died') {
					seen.push({via: 'events$', state: machine.state, death: event.death});
				}
			},
			complete() {
				completed = true;
			},
		});
		await machine.start();
		const death = await machine.died;
		expect(seen.map(entry => entry.via).sort()).toEqual(['callback 1', 'callback 2', 'events$']);
		for (const entry of seen) {
			expect(entry.state).toBe('Dead');
			expect(entry.death).toBe(death);
		}

		expect(completed).toBe(true);
		expect(death).toMatchObject({cid: machine.cid, reason: DeathReason.REBOOT, exitCode: 32, payloadState: 'Started', initiator: 'guest'});
		// A late callback still hears of it, once.
		const late: VmDeath[] = [];
		machine.onDied(record => late.push(record));
		expect(late).toEqual([death]);
		// Once reported, the temporary directory is gone.
		const {existsSync} = await import('node:fs');
		expect(existsSync(machine.tempDir!)).toBe(false);
	});

	test('every event carries the cid and who initiated it; snapshots serialize without the subprocess', async () => {
		const machine = vm({kernel: guest('payload started', 'hang')});
		const events: VmEvent[] = [];
		machine.events$.subscribe(event => events.push(event));
		const serialized: string[] = [];
		machine.snapshots$.subscribe(snapshot => serialized.push(JSON.stringify(snapshot)));
		await machine.start();
		await firstValueFrom(machine.events$.pipe(filter(event => event.type === 'payload')));
		await machine.stop({timeoutMs: 2000});
		expect(events.map(event => event.type)).toEqual(['started', 'payload', 'stopping', 'died']);
		for (const event of events) {
			expect(event.cid).toBe(machine.cid);
			expect(['guest', 'vmm', 'caller', 'supervisor']).toContain(event.initiator);
		}

		expect(events[0]).toMatchObject({initiator: 'caller', pid: machine.pid, tempDir: machine.tempDir});
		expect(events[1]).toMatchObject({initiator: 'guest'});
		const running = serialized.map(text => JSON.parse(text) as {value: unknown; context: Record<string, unknown>}).find(snapshot => typeof snapshot.value === 'object' && 'Running' in (snapshot.value as object));
		// The process lives in the actor Running invokes; the context keeps its facts for the record.
		expect(running?.context).toMatchObject({pid: machine.pid, tempDir: machine.tempDir, env: {driver: 'crosvm', payloadChannel: true, detectHangup: false, requester: {uid: process.getuid!()}}});
		expect(Object.keys(running?.context ?? {})).not.toContain('vmm');
	});

	test('logs through a child logger labelled with the CID, at spawn, exit and kill', async () => {
		const logger = silentLogger();
		const machine = vm({kernel: guest('hang')}, {logger});
		await machine.start();
		machine.kill();
		await machine.died;
		const messages = logger.lines.map(line => `${line.level} ${line.message}`);
		expect(logger.lines.every(line => line.cid === machine.cid && line.label === `vm ${machine.cid}`)).toBe(true);
		expect(messages).toEqual(expect.arrayContaining([
			`info Spawned crosvm(${machine.pid})`,
			`info Killing crosvm(${machine.pid})`,
			`info crosvm(${machine.pid}) exited with signal SIGKILL`,
		]));
	});
});

describe('a VM actor stopped from outside (as a parent stopping its child)', () => {
	const {guest, vm} = useVmFixture();

	test('kills the VMM and releases its temporary directory and descriptors', async () => {
		const machine = vm({kernel: guest('payload started', 'hang')});
		await machine.start();
		const {pid} = machine;
		machine.actor.stop();
		// The leak check after the test proves, through /proc and the file system, that the VMM
		// (pid above) is gone and the temporary directory removed.
		expect(pid).toBeGreaterThan(0);
	});

	test('also when stopped after the VMM exited, before its death was decided', async () => {
		// The grandchild keeps the failure channel open, so the death waits out the channel's grace.
		const machine = vm({kernel: guest('spawn-holder 3000', 'crash')});
		const exitSeen = vmmExitSeen(machine);
		await machine.start();
		await exitSeen;
		expect(machine.state).toBe('Running');
		machine.actor.stop();
		// The leak check after the test proves the temporary directory and descriptors are released.
	});

	test('also when stopped while starting: start() rejects and nothing is left', async () => {
		const machine = vm({kernel: guest('payload started', 'hang')});
		const starting = machine.start();
		machine.actor.stop();
		await expect(starting).rejects.toThrow(VmStateError);
		await expect(machine.stop()).resolves.toBeUndefined();
	});
});
