import {spawn, type ChildProcess, type StdioOptions} from 'node:child_process';
import {chmodSync, closeSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, writeFileSync} from 'node:fs';
import path from 'node:path';
import {createInterface} from 'node:readline';
import {describe, expect, test} from '@jest/globals';
import {until} from '../../../helpers/until.js';
import {SIM_PATH, useVmFixture} from '../../../helpers/vm-fixture.js';

/** O_CLOEXEC in the `flags:` of /proc/<pid>/fdinfo (octal 02000000). */
const O_CLOEXEC = 0o2000000;

/**
 * The descriptor numbers the host inherits the secret file at, without close-on-exec. Above 16 and
 * after a gap: Node marks what it inherited at 0 to 15, and on up to the first free number,
 * close-on-exec at start-up (libuv's `uv_disable_stdio_inheritance`); it leaves the rest alone.
 */
const SECRET_FDS = [40, 100];

interface Descriptor {
	target: string;
	inheritable: boolean;
}

/** A process's open descriptors as /proc shows them. */
function descriptorsOf(pid: number): Map<number, Descriptor> {
	const descriptors = new Map<number, Descriptor>();
	for (const entry of readdirSync(`/proc/${pid}/fd`)) {
		try {
			const flags = Number.parseInt(/^flags:\s*([0-7]+)$/m.exec(readFileSync(`/proc/${pid}/fdinfo/${entry}`, 'utf8'))![1]!, 8);
			descriptors.set(Number(entry), {target: readlinkSync(`/proc/${pid}/fd/${entry}`), inheritable: (flags & O_CLOEXEC) === 0});
		} catch {
			// Closed meanwhile (the descriptor that read the directory, say).
		}
	}

	return descriptors;
}

function inheritableNumbers(descriptors: Map<number, Descriptor>): number[] {
	return [...descriptors].filter(([, {inheritable}]) => inheritable).map(([fd]) => fd).sort((a, b) => a - b);
}

/**
 * The VMM, as a shell script that has its descriptors recorded as it got them (before anything of
 * its own is open: dash and bash keep the script's descriptor close-on-exec at 10 or above) and then
 * execs the simulator. The record is written by a child that reads the script's /proc entries, to
 * `$VMW_FD_RECORDS/<subcommand>-<pid>.json`, whole or not at all; the script itself opens nothing.
 */
function recordingVmm(directory: string): string {
	const recorder = path.join(directory, 'record-descriptors.cjs');
	writeFileSync(recorder, [
		'\'use strict\';',
		'const fs = require(\'node:fs\');',
		'const [pid, ...args] = process.argv.slice(2);',
		'const subcommand = args.find(arg => !arg.startsWith(\'-\'));',
		'const descriptors = {};',
		'for (const entry of fs.readdirSync(`/proc/${pid}/fd`)) {',
		'\tdescriptors[entry] = {target: fs.readlinkSync(`/proc/${pid}/fd/${entry}`), flags: /^flags:\\s*([0-7]+)$/m.exec(fs.readFileSync(`/proc/${pid}/fdinfo/${entry}`, \'utf8\'))[1]};',
		'}',
		'const file = `${process.env.VMW_FD_RECORDS}/${subcommand}-${pid}.json`;',
		'fs.writeFileSync(`${file}.draft`, JSON.stringify(descriptors));',
		'fs.renameSync(`${file}.draft`, file);',
		'',
	].join('\n'));
	const file = path.join(directory, 'crosvm-recording');
	writeFileSync(file, [
		'#!/bin/sh',
		`${JSON.stringify(process.execPath)} ${JSON.stringify(recorder)} "$$" "$@" || exit 99`,
		`exec ${JSON.stringify(process.execPath)} ${JSON.stringify(SIM_PATH)} "$@"`,
		'',
	].join('\n'));
	chmodSync(file, 0o755);
	return file;
}

/** A record of `recordingVmm`. */
function recorded(file: string): Map<number, Descriptor> {
	const descriptors = JSON.parse(readFileSync(file, 'utf8')) as Record<string, {target: string; flags: string}>;
	return new Map(Object.entries(descriptors).map(([fd, {target, flags}]) => [Number(fd), {target, inheritable: (Number.parseInt(flags, 8) & O_CLOEXEC) === 0}]));
}

/** Waits for the records of `subcommand`: one per run of it. */
async function recordsOf(records: string, subcommand: string): Promise<Array<Map<number, Descriptor>>> {
	const named = () => readdirSync(records).filter(name => name.startsWith(`${subcommand}-`) && name.endsWith('.json'));
	await until(() => named().length > 0);
	return named().map(name => recorded(path.join(records, name)));
}

/** Starts the host with the secret at each of `SECRET_FDS`; the test's own copy is closed again. */
function startHost(secret: string, vmm: string, kernel: string, tempRoot: string, records: string): ChildProcess {
	const secretFd = openSync(secret, 'r');
	try {
		// Inheritable in the host, as if its own parent had passed them on (libuv dup2s each stdio
		// entry to its index in the child, without close-on-exec).
		const stdio: StdioOptions = ['pipe', 'pipe', 'inherit'];
		for (const fd of SECRET_FDS) {
			while (stdio.length < fd) {
				stdio.push('ignore');
			}

			stdio[fd] = secretFd;
		}

		return spawn(process.execPath, ['--import', 'tsx', path.resolve('test/services/vmm/spawn/inheritable-host.ts'), vmm, kernel, tempRoot], {stdio, env: {...process.env, VMW_FD_RECORDS: records}});
	} finally {
		closeSync(secretFd);
	}
}

describe('the host\'s inheritable descriptors', () => {
	const {context, guest} = useVmFixture();

	test('never reach a VMM nor its stop command: they get their standard streams and their plan only', async () => {
		const secret = path.join(context.scripts, 'secret');
		writeFileSync(secret, 'the host\'s own file\n');
		const records = path.join(context.scripts, 'records');
		mkdirSync(records);
		const host = startHost(secret, recordingVmm(context.scripts), guest('hang'), context.tempRoot, records);
		const exited = new Promise<number | null>(resolve => {
			host.once('exit', resolve);
		});
		try {
			const lines = createInterface({input: host.stdout!})[Symbol.asyncIterator]();
			const started = await lines.next();
			expect(started.done).toBe(false);
			const {pid} = JSON.parse(started.value as string) as {pid: number};

			// The host really holds the secret where it should, inheritable.
			const hostDescriptors = descriptorsOf(host.pid!);
			for (const fd of SECRET_FDS) {
				expect([fd, hostDescriptors.get(fd)]).toEqual([fd, {target: secret, inheritable: true}]);
			}

			// What the VMM got (its record says it is past setpriv's exec, whose cmdline reads empty):
			// its standard streams and its plan, nothing at the host's numbers.
			const runs = await recordsOf(records, 'run');
			// The VMM's plan: every /proc/self/fd/N on its command line names its descriptor N.
			const planned = [...new Set([...readFileSync(`/proc/${pid}/cmdline`, 'utf8').matchAll(/\/proc\/self\/fd\/(\d+)/g)].map(match => Number(match[1])))];
			expect(planned).toContain(3);
			expect(runs).toHaveLength(1);
			const run = runs[0]!;
			expect(inheritableNumbers(run)).toEqual([0, 1, 2, ...planned].sort((a, b) => a - b));
			expect(SECRET_FDS.filter(fd => run.has(fd))).toEqual([]);
			// And what it holds now, running.
			expect([...run.values(), ...descriptorsOf(pid).values()].map(({target}) => target)).not.toContain(secret);

			// The stop command (`crosvm stop SOCKET`) has no plan beyond its standard streams.
			host.stdin!.write('stop\n');
			const stopped = await lines.next();
			expect(JSON.parse(stopped.value as string)).toEqual({death: 'SHUTDOWN'});
			expect(await exited).toBe(0);
			// One stop or more: a stop that came before the VMM listened on its socket is tried again.
			for (const stop of await recordsOf(records, 'stop')) {
				expect(inheritableNumbers(stop)).toEqual([0, 1, 2]);
				expect([...stop.values()].map(({target}) => target)).not.toContain(secret);
			}
		} finally {
			// A failed assertion leaves the host running; its VMM goes with it.
			host.kill('SIGKILL');
			await exited;
		}
	});
});
