/**
 * The types every layer shares: a VM's death, its lifecycle events, who asked for it and who caused
 * what. This module imports no façade or machine, so anything may import it.
 */
import type {VmwardenError} from './errors.js';
import type {DeathReason} from './services/death/reason.js';
import type {PayloadState} from './services/payload/state.js';

/** Who caused an event: the guest, the VMM itself, the caller of the handle, or the supervisor. */
export type Initiator = 'guest' | 'vmm' | 'caller' | 'supervisor';

/** The VM's own lifecycle, as the reference's `VmState`. */
export type VmState = 'NotStarted' | 'Running' | 'Dead' | 'Failed';

/** Who asked for the VM: the reference's requester uid, sid and (untrusted) debug pid. */
export interface Requester {
	uid: number;
	sid: string;
	/** May no longer exist or belong to another process by now: for logs only. */
	debugPid: number;
}

/** How a VM died: reported once, to every callback, observable and the `died` promise. */
export interface VmDeath {
	cid: number;
	reason: DeathReason;
	/** The VMM's exit status, when it exited. */
	exitCode: number | undefined;
	/** The signal that killed the VMM, when one did. */
	signal: NodeJS.Signals | undefined;
	/** The failure text up to its first `|` (undefined when the guest wrote none). */
	failureReason: string | undefined;
	/** The failure text after its first `|`. */
	failureContext: string | undefined;
	/** The payload state at death. */
	payloadState: PayloadState;
	/** The last few KiB the VMM wrote to stderr. */
	stderrTail: string;
	/** Who caused the death: the caller or supervisor when they stopped or killed it, else guest or VMM. */
	initiator: Initiator;
	/**
	 * The guest console's last lines (oldest first, bounded: docs/operations.md), when the VM
	 * captured its console (`capture: {console: true}`); undefined otherwise.
	 */
	consoleTail?: string[];
}

export interface VmEventBase {
	cid: number;
	initiator: Initiator;
}

/** Typed lifecycle events of one VM (`vm.events$`, and `actor.on(type, ...)`). */
export type VmEvent =
	| (VmEventBase & {type: 'started'; pid: number; tempDir: string})
	| (VmEventBase & {type: 'payload'; from: PayloadState; to: PayloadState})
	| (VmEventBase & {type: 'payload-refused'; from: PayloadState; to: PayloadState; message: string})
	| (VmEventBase & {type: 'hangup'; timeoutMs: number})
	| (VmEventBase & {type: 'stopping'; timeoutMs: number})
	| (VmEventBase & {type: 'killing'; pid: number})
	| (VmEventBase & {type: 'died'; death: VmDeath})
	| (VmEventBase & {type: 'failed'; error: VmwardenError});

export type VmEventType = VmEvent['type'];

/** The requester of a VM created without one: this process (its uid, no sid, its pid). */
export function defaultRequester(): Requester {
	return {uid: process.getuid?.() ?? -1, sid: '', debugPid: process.pid};
}
