import {readdirSync, readFileSync, readlinkSync} from 'node:fs';

/** A process as /proc shows it; the start time tells a reused pid apart. */
export interface ProcessRecord {
	pid: number;
	ppid: number;
	startTime: string;
	command: string;
}

/** What this process holds at one moment, read from /proc and the file system only. */
export interface ResourceSnapshot {
	/** Every descendant of this process (children, grandchildren, ...), keyed `pid@starttime`. */
	descendants: Map<string, ProcessRecord>;
	/** This process's open descriptors and what they point at. */
	descriptors: Map<number, string>;
	/** The entries of each watched directory. */
	directories: Map<string, string[]>;
}

function readProcess(pid: number): ProcessRecord | undefined {
	try {
		const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
		// The command name is in parentheses and may itself contain spaces or parentheses.
		const close = stat.lastIndexOf(')');
		const fields = stat.slice(close + 2).split(' ');
		// After the name: state(0) ppid(1) ... starttime is field 22 of stat, index 19 here.
		const state = fields[0];
		if (state === 'Z' || state === 'X') {
			// A zombie still counts: nobody reaped it.
			return {pid, ppid: Number(fields[1]), startTime: fields[19] ?? '', command: `${stat.slice(stat.indexOf('(') + 1, close)} (zombie)`};
		}

		let command = stat.slice(stat.indexOf('(') + 1, close);
		try {
			command = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim() || command;
		} catch {
			// Gone meanwhile: keep the short name.
		}

		return {pid, ppid: Number(fields[1]), startTime: fields[19] ?? '', command};
	} catch {
		return undefined;
	}
}

/** Every process that descends from `root`, found by walking the ppid links of all of /proc. */
export function descendantsOf(root: number): Map<string, ProcessRecord> {
	const all: ProcessRecord[] = [];
	for (const entry of readdirSync('/proc')) {
		if (/^\d+$/.test(entry)) {
			const record = readProcess(Number(entry));
			if (record !== undefined) {
				all.push(record);
			}
		}
	}

	const byParent = new Map<number, ProcessRecord[]>();
	for (const record of all) {
		byParent.set(record.ppid, [...(byParent.get(record.ppid) ?? []), record]);
	}

	const found = new Map<string, ProcessRecord>();
	const queue = [root];
	while (queue.length > 0) {
		for (const child of byParent.get(queue.shift()!) ?? []) {
			found.set(`${child.pid}@${child.startTime}`, child);
			queue.push(child.pid);
		}
	}

	return found;
}

export function openDescriptors(): Map<number, string> {
	const descriptors = new Map<number, string>();
	for (const entry of readdirSync('/proc/self/fd')) {
		try {
			descriptors.set(Number(entry), readlinkSync(`/proc/self/fd/${entry}`));
		} catch {
			// The descriptor readdir itself used, closed by now.
		}
	}

	return descriptors;
}

export function takeSnapshot(directories: string[] = []): ResourceSnapshot {
	return {
		descendants: descendantsOf(process.pid),
		descriptors: openDescriptors(),
		directories: new Map(directories.map(directory => [directory, readdirSync(directory).sort()])),
	};
}

/** What appeared since `baseline`, as readable lines (empty when nothing leaked). */
export function leaksSince(baseline: ResourceSnapshot, now: ResourceSnapshot): string[] {
	const leaks: string[] = [];
	for (const [key, record] of now.descendants) {
		if (!baseline.descendants.has(key)) {
			leaks.push(`process ${record.pid} (${record.command}) still runs`);
		}
	}

	for (const [fd, target] of now.descriptors) {
		if (baseline.descriptors.get(fd) !== target) {
			leaks.push(`descriptor ${fd} -> ${target} is open`);
		}
	}

	for (const [directory, entries] of now.directories) {
		const before = new Set(baseline.directories.get(directory) ?? []);
		for (const entry of entries) {
			if (!before.has(entry)) {
				leaks.push(`${directory}/${entry} exists`);
			}
		}
	}

	return leaks;
}

/**
 * Waits (up to `timeoutMs`, since a reaped process or a closed socket may lag the death report by a
 * tick) until nothing is left beyond `baseline`, and returns what is still left.
 */
export async function settleLeaks(baseline: ResourceSnapshot, directories: string[], timeoutMs = 2000): Promise<string[]> {
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		const leaks = leaksSince(baseline, takeSnapshot(directories));
		if (leaks.length === 0 || Date.now() > deadline) {
			return leaks;
		}

		await new Promise(resolve => {
			setTimeout(resolve, 25);
		});
	}
}
