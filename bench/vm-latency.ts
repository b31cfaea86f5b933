/**
 * VM actor latency against a bare execa spawn of the same binary, measured in the same run.
 * Run: `npm run build && npx tsx bench/vm-latency.ts [iterations]`. Not a test: it prints a table.
 *
 * - start -> running: `vm.start()` until it resolves, against `execa()` until the 'spawn' event.
 * - exit -> death callback: the VMM's exit as the host sees it (the child's 'exit' event, observed
 *   through the inspector as the machine's VMM.EXIT) until `onDied` runs, against the child's 'exit'
 *   event until the execa promise resolves.
 */
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {performance} from 'node:perf_hooks';
import {execa} from 'execa';
import winston from 'winston';
import {createVm} from '../src/vm.js';

const iterations = Number(process.argv[2] ?? 30);
// VMWARDEN_TEST_VMM points it at another VMM, as in the tests.
const simPath = process.env['VMWARDEN_TEST_VMM'] ?? path.resolve('dist/crosvm-sim/cli.js');
const scratch = mkdtempSync(path.join(os.tmpdir(), 'vmw-bench-'));
const kernel = path.join(scratch, 'guest');
writeFileSync(kernel, '#!crosvm-sim-guest\npayload started\npoweroff\n');
const logger = winston.createLogger({silent: true});

interface Sample {
	start: number;
	exitToResult: number;
}

async function bareSpawn(): Promise<Sample> {
	const startedAt = performance.now();
	const subprocess = execa(simPath, ['--extended-status', 'run', '--disable-sandbox', kernel], {reject: false});
	let spawnedAt = 0;
	let exitedAt = 0;
	subprocess.once('spawn', () => {
		spawnedAt = performance.now();
	});
	subprocess.once('exit', () => {
		exitedAt = performance.now();
	});
	await subprocess;
	return {start: spawnedAt - startedAt, exitToResult: performance.now() - exitedAt};
}

async function vmLifecycle(cid: number): Promise<Sample> {
	let exitedAt = 0;
	const vm = createVm({kernel}, {
		cid,
		crosvmPath: simPath,
		tempRoot: scratch,
		logger,
		inspect(event) {
			if (event.type === '@xstate.event' && event.event.type === 'VMM.EXIT') {
				exitedAt = performance.now();
			}
		},
	});
	const died = new Promise<number>(resolve => {
		vm.onDied(() => {
			resolve(performance.now());
		});
	});
	const startedAt = performance.now();
	await vm.start();
	const runningAt = performance.now();
	const diedAt = await died;
	return {start: runningAt - startedAt, exitToResult: diedAt - exitedAt};
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
// Warm up both paths (module loading, the first spawn's one-time setup), then interleave them so
// both see the same machine load.
await bareSpawn();
await vmLifecycle(3);
for (let index = 0; index < iterations; index++) {
	bare.push(await bareSpawn());
	vms.push(await vmLifecycle(4 + index));
}

rmSync(scratch, {recursive: true, force: true});

const rows = [
	['start -> running', vms.map(sample => sample.start), bare.map(sample => sample.start)],
	['exit -> death callback', vms.map(sample => sample.exitToResult), bare.map(sample => sample.exitToResult)],
] as const;

console.log(`VM actor vs bare execa spawn of ${path.relative(process.cwd(), simPath)}, ${iterations} runs each (ms)`);
console.table(Object.fromEntries(rows.map(([name, vm, baseline]) => [name, {
	'vm median': Number(median(vm).toFixed(2)),
	'vm p90': Number(p90(vm).toFixed(2)),
	'execa median': Number(median(baseline).toFixed(2)),
	'execa p90': Number(p90(baseline).toFixed(2)),
	'ratio (median)': Number((median(vm) / median(baseline)).toFixed(2)),
}])));
