/**
 * A real boot under QEMU: the time from `vm.start()` to the payload's `Started`, against bare QEMU
 * booting the same guest to the same `VMW1 STARTED` line, measured in the same run.
 * Run: `npx tsx bench/qemu-boot.ts [iterations]` (default 3; each boot takes seconds under TCG).
 * Not a test: it prints a table. It runs scripts/e2e/setup.sh first (which may install packages).
 *
 * - bare QEMU, same command line: the argv the QEMU driver builds, spawned directly with the same
 *   descriptors, reading the payload channel for `VMW1 STARTED` (the baseline).
 * - bare QEMU, minimal: the same kernel, initrd and UARTs without the driver's extra devices.
 * - vmwarden: `createVm` with the QEMU driver, `start()` until the payload state is `Started`.
 */
import {spawnSync} from 'node:child_process';
import {closeSync, mkdirSync, mkdtempSync, openSync, rmSync} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {performance} from 'node:perf_hooks';
import type {Readable} from 'node:stream';
import {execa} from 'execa';
import {filter, firstValueFrom} from 'rxjs';
import winston from 'winston';
import {qemuCommand} from '../src/services/qemu/command.js';
import {createQemuDriver} from '../src/services/qemu/driver.js';
import {createVm} from '../src/vm.js';

const iterations = Number(process.argv[2] ?? 3);
const setup = spawnSync('bash', [path.resolve('scripts/e2e/setup.sh')], {encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit']});
if (setup.status !== 0) {
	console.log(`qemu-boot benchmark skipped: scripts/e2e/setup.sh exited ${setup.status ?? setup.signal}`);
	process.exit(setup.status === 3 ? 0 : 1);
}

const manifest = JSON.parse(setup.stdout.trim().split('\n').at(-1)!) as {qemu: string; kernel: string; initrd: string; qemuVersion: string};
const scratch = mkdtempSync(path.join(os.tmpdir(), 'vmw-qemu-bench-'));
const logger = winston.createLogger({silent: true});
const params = 'console=ttyS0 quiet vmwarden.scenario=poweroff';
const accelerators = ['tcg'] as const;

/** Resolves when `stream` carries `VMW1 STARTED`. */
async function startedLine(stream: Readable): Promise<void> {
	let seen = '';
	await new Promise<void>((resolve, reject) => {
		stream.on('data', (chunk: Buffer) => {
			seen += chunk.toString();
			if (seen.includes('VMW1 STARTED\n')) {
				resolve();
			}
		});
		stream.once('end', () => {
			reject(new Error(`the payload channel ended before VMW1 STARTED: ${JSON.stringify(seen)}`));
		});
	});
}

/** Bare QEMU with the driver's own command line and descriptors; ms to VMW1 STARTED. */
async function bareSameCommand(run: number): Promise<number> {
	const tempDir = path.join(scratch, `bare-${run}`);
	mkdirSync(tempDir);
	const command = qemuCommand({kernel: manifest.kernel, initrd: manifest.initrd, params, consoleOutput: path.join(tempDir, 'console')}, {
		cid: 3,
		qmpSocket: path.join(tempDir, 'qemu.sock'),
		eventLog: path.join(tempDir, 'events.log'),
		payloadChannel: true,
		accelerators: [...accelerators],
	});
	const opened: number[] = [];
	const stdio = command.fds.map(entry => {
		if (entry.kind === 'channel') {
			return 'pipe' as const;
		}

		const fd = openSync(entry.source as string, entry.access === 'append' ? 'a' : 'r');
		opened.push(fd);
		return fd;
	});
	const payloadFd = command.fds.find(entry => entry.role === 'payload')!.childFd;
	const startedAt = performance.now();
	const subprocess = execa(manifest.qemu, command.args, {stdio: ['ignore', 'ignore', 'pipe', ...stdio] as unknown as ['ignore', 'ignore', 'pipe'], buffer: false, reject: false});
	await startedLine(subprocess.stdio[payloadFd] as Readable);
	const elapsed = performance.now() - startedAt;
	await subprocess;
	for (const fd of opened) {
		closeSync(fd);
	}

	return elapsed;
}

/** Bare QEMU, minimal machine: console to a file, failure UART discarded, payload on stdout. */
async function bareMinimal(run: number): Promise<number> {
	const consolePath = path.join(scratch, `minimal-${run}.console`);
	const startedAt = performance.now();
	const subprocess = execa(manifest.qemu, [
		'-nodefaults', '-no-user-config', '-display', 'none', '-accel', 'tcg',
		'-kernel', manifest.kernel, '-initrd', manifest.initrd, '-append', params,
		'-serial', `file:${consolePath}`, '-serial', 'null', '-serial', 'stdio',
	], {stdin: 'ignore', stdout: 'pipe', buffer: false, reject: false});
	await startedLine(subprocess.stdout);
	const elapsed = performance.now() - startedAt;
	await subprocess;
	return elapsed;
}

/** vmwarden: `start()` until the payload state is Started. */
async function vmwarden(run: number): Promise<number> {
	const vm = createVm({kernel: manifest.kernel, initrd: manifest.initrd, params, consoleOutput: path.join(scratch, `vm-${run}.console`)}, {
		cid: 10 + run,
		driver: createQemuDriver({accelerators: [...accelerators]}),
		crosvmPath: manifest.qemu,
		tempRoot: scratch,
		logger,
		filePolicy: {createOutputs: true},
	});
	const started = firstValueFrom(vm.snapshots$.pipe(filter(snapshot => snapshot.context.payloadState !== 'Starting')));
	const startedAt = performance.now();
	await vm.start();
	await started;
	const elapsed = performance.now() - startedAt;
	await vm.died;
	return elapsed;
}

function median(values: number[]): number {
	const sorted = [...values].sort((a, b) => a - b);
	return sorted[Math.floor(sorted.length / 2)]!;
}

const samples = {same: [] as number[], minimal: [] as number[], vmwarden: [] as number[]};
try {
	for (let run = 0; run < iterations; run++) {
		// Interleaved, so drift in the machine's load hits every side alike.
		samples.same.push(await bareSameCommand(run));
		samples.minimal.push(await bareMinimal(run));
		samples.vmwarden.push(await vmwarden(run));
	}
} finally {
	rmSync(scratch, {recursive: true, force: true});
}

const baseline = median(samples.same);
const row = (name: string, values: number[]) => `${name.padEnd(40)} ${median(values).toFixed(0).padStart(8)} ms ${(median(values) / baseline).toFixed(3).padStart(8)}x`;
console.log(`${manifest.qemuVersion}, TCG, ${iterations} boots each, median time to the payload's STARTED`);
console.log(`${'side'.padEnd(40)} ${'median'.padStart(11)} ${'ratio'.padStart(9)}`);
console.log(row('bare QEMU, driver\'s command (baseline)', samples.same));
console.log(row('bare QEMU, minimal machine', samples.minimal));
console.log(row('vmwarden start() -> payload Started', samples.vmwarden));
