import {isTempDirName, removeStaleTempDir} from '../vmm/temp-dir.js';
import {effectiveUid} from './private-dir.js';
import {isDeadState, readProcessArguments, readProcessEffectiveUid, readProcessStat, readProcessStatAsync, waitForProcessExit} from './process-identity.js';
import {checkVmRecord, readStaleVm, recordFileName, removeVmRecord, type StaleVmEntry, type VmRecord} from './records.js';

/** What became of a previous instance's VM whose CID is free again. */
export type StaleVmOutcome =
	/** It still ran, was provably its VMM, and was killed. */
	| 'killed'
	/** It was no longer running. */
	| 'gone'
	/** Its PID now belongs to an unrelated process, which was left alone. */
	| 'pid-reused'
	/** It was sent SIGKILL but still ran after the wait (uninterruptible sleep); its CID is freed anyway. */
	| 'kill-timed-out';

/** Why a previous instance's record keeps its CID held (and stays in place for an operator). */
export type HeldStaleVmOutcome =
	/**
	 * A process runs with the recorded PID and start time, but is not provably the VMM recorded
	 * (another uid, or a command line that does not name the VM's temporary directory), or it
	 * could not be signalled (EPERM): it was left alone, and may still use the CID.
	 */
	| 'refused'
	/** The record could not be read or is not a record vmwarden writes: nothing it names was touched. */
	| 'unreadable';

/** The report of one reaped VM, whose CID is free again. */
export interface ReapedVm {
	cid: number;
	pid: number;
	tempDir: string;
	outcome: StaleVmOutcome;
	/** Whether its temporary directory was removed (or was already gone). */
	tempDirRemoved: boolean;
	/** What was done and why, for logs: why the temporary directory was left alone, for one. */
	reason: string;
}

/** The report of one record the reaper found: either reaped (CID free) or held. */
export type StaleVmReport =
	| (ReapedVm & {cidReleased: true})
	| {cid: number; pid: number | undefined; tempDir: string | undefined; outcome: HeldStaleVmOutcome; tempDirRemoved: false; reason: string; cidReleased: false};

export interface ReapOptions {
	/** How long a killed VMM may take to exit. Default 5 s. */
	killTimeoutMs?: number;
	/** How many records are worked on at once. Default 16. */
	concurrency?: number;
	/** Sends a signal: `process.kill` unless a test injects another. */
	signal?: (pid: number, signal: NodeJS.Signals) => void;
}

const DEFAULT_CONCURRENCY = 16;

/**
 * Reaps every record `openStateDir` listed: reads each (asynchronously, bounded, never through a
 * link), kills its VMM only if it provably is that VMM, removes its temporary directory only if
 * vmwarden provably created it, and removes the record. One record's trouble never stops the
 * others: every entry gets a report, in CID order. Never rejects.
 */
export async function reapStateDir(stateDir: string, entries: readonly StaleVmEntry[], options: ReapOptions = {}): Promise<StaleVmReport[]> {
	return mapBounded(entries, options.concurrency ?? DEFAULT_CONCURRENCY, async entry => {
		try {
			const read = await readStaleVm(stateDir, entry);
			if (!read.ok) {
				return held(entry.cid, undefined, 'unreadable', `its record ${entry.file} ${read.reason}: left in place, CID held`);
			}

			return await reapRecord(stateDir, read.record, options);
		} catch (error) {
			// Nothing above throws on purpose; should it, this one record stays held, the others go on.
			return held(entry.cid, undefined, 'refused', `reaping its record failed: ${String(error)}: CID held`);
		}
	});
}

/**
 * Reaps records already read (as `readVmRecords` gives them). Returns the VMs whose CID is free
 * again; a record that is refused keeps its CID held and is not in the result. Never rejects.
 */
export async function reapStaleVms(stateDir: string, records: readonly VmRecord[], options: ReapOptions = {}): Promise<ReapedVm[]> {
	const reports = await mapBounded(records, options.concurrency ?? DEFAULT_CONCURRENCY, async record => {
		const checked = checkVmRecord({...record});
		return typeof checked === 'string' ? held(record.cid, undefined, 'unreadable', `its record ${checked}`) : reapRecord(stateDir, checked, options);
	});
	return reports.flatMap(report => {
		if (!report.cidReleased) {
			return [];
		}

		const {cidReleased: _released, ...reaped} = report;
		return [reaped];
	});
}

async function reapRecord(stateDir: string, record: VmRecord, options: ReapOptions): Promise<StaleVmReport> {
	const {pid, startTime} = record;
	const stat = await readProcessStatAsync(pid);
	if (stat === undefined || isDeadState(stat.state)) {
		return cleanUp(stateDir, record, 'gone', 'no longer running');
	}

	if (stat.startTime !== startTime) {
		return cleanUp(stateDir, record, 'pid-reused', `its PID now names another process (started at ${stat.startTime}), left alone`);
	}

	const problem = await notTheVmm(record);
	if (problem !== undefined) {
		return held(record.cid, record, 'refused', `process ${pid} has the recorded start time but ${problem}: left alone, record kept, CID held`);
	}

	// Read again right before the signal: the window for the PID to be freed and reused is that
	// of two system calls (Node has no pidfd to close it).
	const now = readProcessStat(pid);
	if (now === undefined || isDeadState(now.state) || now.startTime !== startTime) {
		return cleanUp(stateDir, record, 'gone', 'exited while being examined');
	}

	try {
		(options.signal ?? process.kill)(pid, 'SIGKILL');
	} catch (error) {
		const code = (error as NodeJS.ErrnoException).code;
		if (code === 'ESRCH') {
			return cleanUp(stateDir, record, 'gone', 'exited while being examined');
		}

		return held(record.cid, record, 'refused', `process ${pid} cannot be signalled (${code ?? String(error)}): left alone, record kept, CID held`);
	}

	const exited = await waitForProcessExit({pid, startTime}, {timeoutMs: options.killTimeoutMs ?? 5000});
	return exited
		? cleanUp(stateDir, record, 'killed', 'still running: killed')
		: cleanUp(stateDir, record, 'kill-timed-out', 'sent SIGKILL, still running after the wait');
}

/**
 * Why the running process is not provably the VMM the record names: it must run as our uid, and
 * its command line must name the VM's temporary directory (every driver puts the control socket
 * there), whose name must be one vmwarden gives. A start time can be read by anyone from /proc, so
 * PID and start time alone prove nothing about a record that is hostile.
 */
async function notTheVmm(record: VmRecord): Promise<string | undefined> {
	if (!isTempDirName(record.tempDir, record.cid)) {
		return 'the record\'s temporary directory is not one vmwarden names';
	}

	const uid = effectiveUid();
	const processUid = await readProcessEffectiveUid(record.pid);
	if (uid !== undefined && processUid !== uid) {
		return `runs as uid ${processUid ?? 'unknown'}, not ${uid}`;
	}

	const args = await readProcessArguments(record.pid);
	if (args?.some(argument => argument.includes(`${record.tempDir}/`)) !== true) {
		return 'its command line does not name the recorded temporary directory';
	}

	return undefined;
}

async function cleanUp(stateDir: string, record: VmRecord, outcome: StaleVmOutcome, what: string): Promise<StaleVmReport> {
	const removal = await removeStaleTempDir(record.tempDir, record.cid);
	const reasons = [what];
	if (removal.reason !== undefined) {
		reasons.push(`temporary directory ${removal.reason}`);
	}

	const removed = removeVmRecord(stateDir, record.cid);
	if (!removed.ok) {
		reasons.push(`its record ${recordFileName(record.cid)} could not be removed: ${removed.error.reason}`);
	}

	return {cid: record.cid, pid: record.pid, tempDir: record.tempDir, outcome, tempDirRemoved: removal.removed, reason: reasons.join('; '), cidReleased: true};
}

function held(cid: number, record: VmRecord | undefined, outcome: HeldStaleVmOutcome, reason: string): StaleVmReport {
	return {cid, pid: record?.pid, tempDir: record?.tempDir, outcome, tempDirRemoved: false, reason, cidReleased: false};
}

/** Maps `items` with at most `limit` calls in flight, keeping their order. */
async function mapBounded<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
	const results: R[] = Array.from({length: items.length});
	let next = 0;
	const worker = async () => {
		while (next < items.length) {
			const index = next++;
			results[index] = await work(items[index]!);
		}
	};

	await Promise.all(Array.from({length: Math.min(Math.max(1, limit), items.length)}, worker));
	return results;
}
