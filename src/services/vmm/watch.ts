import {FAILURE_CHANNEL_GRACE_MS} from '../death/failure-channel.js';
import {DeathReason} from '../death/reason.js';
import type {VmmExit} from './driver.js';
import type {VmCaptures} from '../console/captures.js';
import type {VmEnvironment} from './environment.js';
import type {VmmProcess} from './process.js';
import {spawnTurn} from './spawn/pace.js';
import {removeTempDir} from './temp-dir.js';

/** What a VM needs of its running VMM: a `VmmProcess` (tests give a fake). */
export type RunningVmm = Pick<VmmProcess, 'pid' | 'file' | 'payloadStream' | 'terminated' | 'hasExited' | 'stderrTail' | 'settled' | 'kill' | 'dispose'>;

/** Everything the death is decided from, once the VMM is gone and its channels are finished. */
export interface VmmDone {
	type: 'VMM.DONE';
	exit: VmmExit;
	waitError: string | undefined;
	failureText: string;
	failureTruncated: boolean;
	exitReason: DeathReason;
	stderrTail: string;
	/** The console's last lines, when it was captured. */
	consoleTail: string[] | undefined;
}

/** What the watcher tells the VM: the exit as soon as it is known, then everything needed to decide. */
export type VmmWatchEvent = {type: 'VMM.EXIT'; exit: VmmExit} | VmmDone;

/** What the VM asks of the VMM's owner. */
export interface VmmCommand {
	type: 'KILL';
}

export interface WatchInput {
	vmm: RunningVmm;
	env: VmEnvironment;
	tempDir: string;
	/** The captured outputs: owned here with the VMM, read to their end (bounded) before the death. */
	captures: VmCaptures | undefined;
}

export interface WatchArgs {
	input: WatchInput;
	sendBack: (event: VmmWatchEvent) => void;
	receive: (listener: (command: VmmCommand) => void) => void;
}

/**
 * Owns the running VMM and its temporary directory for as long as the VM is Running: sends `VMM.EXIT`
 * the moment the VMM exits, then `VMM.DONE` once the failure text and the payload channel are
 * finished (bounded) and the driver gave its reading of the exit; sends SIGKILL when told `KILL`.
 * When stopped, it releases what the VMM held (streams, descriptors, the directory); stopped from
 * outside before the death was delivered (a parent stopping its child), it kills the VMM first and
 * releases once it is gone.
 */
export function watchVmm({input, sendBack, receive}: WatchArgs): () => void {
	const {vmm, env, tempDir, captures} = input;
	const {logger, driver} = env;
	let active = true;
	// Set once VMM.DONE is sent: the VM is Dead, and stopping this actor only releases.
	let delivered = false;
	let released: Promise<unknown> | undefined;
	// Once: streams, descriptors, then the directory (by the spawner, off the event loop), unless
	// the spawner removed it with the exit already.
	const release = async (dirRemoved = false) => {
		released ??= (async () => {
			captures?.dispose();
			vmm.dispose();
			if (!dirRemoved) {
				await removeTempDir(tempDir, logger);
			}
		})();
		return released;
	};

	const deliver = (event: VmmDone) => {
		if (active) {
			delivered = true;
			sendBack(event);
		}
	};

	receive(() => {
		if (vmm.hasExited) {
			return;
		}

		logger.info(`Killing ${driver.name}(${vmm.pid})`);
		if (!vmm.kill('SIGKILL') && !vmm.hasExited) {
			logger.error(`Error killing ${driver.name}(${vmm.pid})`);
		}
	});

	const watch = async () => {
		const {exit, waitError} = await vmm.terminated;
		if (!active) {
			return;
		}

		sendBack({type: 'VMM.EXIT', exit});
		const [failure] = await Promise.all([vmm.settled(FAILURE_CHANNEL_GRACE_MS), captures?.settled(vmm.terminated, FAILURE_CHANNEL_GRACE_MS)]);
		let exitReason: DeathReason;
		try {
			exitReason = await driver.exitReason(exit, {tempDir, stderrTail: vmm.stderrTail});
		} catch (error) {
			logger.error(`The ${driver.name} driver could not read the exit: ${String(error)}`);
			exitReason = DeathReason.UNKNOWN;
		}

		const consoleTail = captures?.consoleTail();
		// Everything is read: the death is reported with nothing of the VM left behind.
		await release(failure.dirRemoved);
		// Deaths come in batches when a fleet stops: each one's transitions wait for a turn, unless the
		// turn its exit took is still on (the spawner's answer came with the exit).
		await spawnTurn(vmm);
		deliver({type: 'VMM.DONE', exit, waitError, failureText: failure.text, failureTruncated: failure.truncated, exitReason, stderrTail: vmm.stderrTail, consoleTail});
	};

	watch().catch((error: unknown) => {
		// Never expected; still the VM must die with a reason rather than hang in Running.
		deliver({type: 'VMM.DONE', exit: {exitCode: undefined, signal: undefined}, waitError: String(error), failureText: '', failureTruncated: false, exitReason: DeathReason.UNKNOWN, stderrTail: vmm.stderrTail, consoleTail: captures?.consoleTail()});
	});
	return () => {
		active = false;
		if (delivered) {
			void release();
			return;
		}

		if (vmm.kill('SIGKILL')) {
			logger.warn(`VM actor stopped while ${driver.name}(${vmm.pid}) runs: killed it`);
		}

		void Promise.all([vmm.settled(FAILURE_CHANNEL_GRACE_MS), captures?.settled(vmm.terminated, FAILURE_CHANNEL_GRACE_MS)]).then(async ([settled]) => release(settled.dirRemoved));
	};
}
