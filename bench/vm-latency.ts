/**
 * VM actor latency against a bare execa spawn of the same binary (the light stand-in, or
 * VMWARDEN_BENCH_VMM), measured in the same run, interleaved so both see the same load.
 * Run: `npm run bench:vm` (builds the package first; ITERATIONS=40 by default). Not a test: it prints a table.
 *
 * - start -> running: `vm.start()` until it resolves, against `execa()` until its 'spawn' event.
 * - exit -> death callback: from the VMM's last instant (the stand-in prints CLOCK_MONOTONIC to
 *   stderr just before it exits, the clock `process.hrtime` reads) until `onDied` runs, against the
 *   same instant until the execa promise resolves. Both are stopped through their control socket.
 */
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {performance} from 'node:perf_hooks';
import {execa} from 'execa';
import winston from 'winston';
// The compiled package, as a host runs it (see bench/fleet.ts).
import {createVm, defaultVmmEnvironment} from '../dist/index.js';
import {benchRoot, standInPath} from './stand-in.js';

const iterations = Number(process.env['ITERATIONS'] ?? 40);
const vmm = standInPath();
// The stand-in stamps its exit when this is set: the bare side inherits it, a VM is given it.
process.env['STAND_IN_EXIT_STAMP'] = '1';
const vmmEnvironment = {...defaultVmmEnvironment(), STAND_IN_EXIT_STAMP: '1'};
const scratch = mkdtempSync(path.join(benchRoot(), 'vmw-bench-'));
const kernel = path.join(scratch, 'kernel');
writeFileSync(kernel, 'not booted by the stand-in\n');
const logger = winston.createLogger({silent: true});

interface Sample {
	start: number;
	exitToResult: number;
}

/** Milliseconds since the stand-in stamped its exit. */
function sinceExit(stderr: string): number {
	const match = /exit-ns (\d+)/.exec(stderr);
	if (match === null) {
		throw new Error(`the VMM printed no exit stamp: ${stderr}`);
	}

	return Number(process.hrtime.bigint() - BigInt(match[1]!)) / 1e6;
}

async function bareSpawn(index: number): Promise<Sample> {
	const socket = path.join(scratch, `bare-${index}.sock`);
	const startedAt = performance.now();
	const subprocess = execa(vmm, ['--extended-status', 'run', '--disable-sandbox', '--vsock', `cid=${3 + index}`, '--socket', socket, kernel], {reject: false, stdin: 'ignore', stdout: 'ignore'});
	const spawnedAt = await new Promise<number>(resolve => {
		subprocess.once('spawn', () => {
			resolve(performance.now());
		});
	});
	await waitForSocket(socket);
	// Bound is not yet listening: ask again, as the VM machine does.
	while ((await execa(vmm, ['stop', socket], {reject: false})).exitCode !== 0) {
		await new Promise(resolve => {
			setTimeout(resolve, 1);
		});
	}

	const result = await subprocess;
	return {start: spawnedAt - startedAt, exitToResult: sinceExit(String(result.stderr))};
}

async function waitForSocket(socket: string): Promise<void> {
	const {existsSync} = await import('node:fs');
	while (!existsSync(socket)) {
		await new Promise(resolve => {
			setTimeout(resolve, 1);
		});
	}
}

async function vmLifecycle(cid: number): Promise<Sample> {
	const vm = createVm({kernel}, {cid, crosvmPath: vmm, tempRoot: scratch, logger, vmmEnvironment});
	// A VMM that printed no stamp fails the run rather than leaving it waiting for ever.
	const died = new Promise<number>((resolve, reject) => {
		vm.onDied(death => {
			try {
				resolve(sinceExit(death.stderrTail));
			} catch (error) {
				reject(error instanceof Error ? error : new Error(String(error)));
			}
		});
	});
	const startedAt = performance.now();
	await vm.start();
	const start = performance.now() - startedAt;
	await waitForSocket(path.join(vm.tempDir!, 'crosvm.sock'));
	await vm.stop();
	return {start, exitToResult: await died};
}

function median(values: number[]): number {
	const sorted = [...values].sort((a, b) => a - b);
	return sorted[Math.floor(sorted.length / 2)]!;
}

function p90(values: number[]): number {
	const sorted = [...values].sort((a, b) => a - b);
	return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.9))]!;
}

const bare: Sample[] = [];
const vms: Sample[] = [];
// Warm up both paths (module loading, the spawner thread, the first spawn's one-time setup).
await bareSpawn(0);
await vmLifecycle(3);
for (let index = 0; index < iterations; index++) {
	bare.push(await bareSpawn(index + 1));
	vms.push(await vmLifecycle(4 + index));
}

rmSync(scratch, {recursive: true, force: true});

const rows = [
	['start -> running', vms.map(sample => sample.start), bare.map(sample => sample.start)],
	['exit -> death callback', vms.map(sample => sample.exitToResult), bare.map(sample => sample.exitToResult)],
] as const;

console.log(`VM actor vs bare execa spawn of ${vmm}, ${iterations} runs each (ms); load ${os.loadavg().map(load => load.toFixed(2)).join(' ')}`);
console.table(Object.fromEntries(rows.map(([name, vm, baseline]) => [name, {
	'vm median': Number(median(vm).toFixed(2)),
	'vm p90': Number(p90(vm).toFixed(2)),
	'execa median': Number(median(baseline).toFixed(2)),
	'execa p90': Number(p90(baseline).toFixed(2)),
	'ratio (median)': Number((median(vm) / median(baseline)).toFixed(2)),
}])));
