import type {DeathReason} from '../services/death/reason.js';
import type {RestartPolicyOptions} from '../services/restart/policy.js';
import type {Initiator} from '../types.js';

/** What the demo does to a VM from the host side once it runs. */
export type HostAction =
	| {kind: 'none'}
	/** `vm.stop({timeoutMs})` after `afterMs`. */
	| {kind: 'stop'; afterMs: number; timeoutMs: number}
	/** `vm.kill()` after `afterMs`. */
	| {kind: 'kill'; afterMs: number}
	/** Left running until `supervisor.shutdown()`. */
	| {kind: 'shutdown'};

/** One VM of the demo fleet: a guest script for crosvm-sim and the end it must reach. */
export interface Scenario {
	name: string;
	/** Guest script directives (the `#!crosvm-sim-guest` line is added). */
	guest: string[];
	detectHangup?: boolean;
	host: HostAction;
	expected: DeathReason;
	/** Who should be blamed for the death. */
	expectedInitiator: Initiator;
	/** The VM's restart policy (default: never restarted). */
	restartPolicy?: RestartPolicyOptions;
	/** After this many deaths the guest script becomes `guest` (read at the next launch). */
	recoverAfter?: {deaths: number; guest: string[]};
	/** How many times the supervisor must have restarted it. Default 0. */
	expectedRestarts?: number;
}

/** Quick enough to watch: 200 ms doubling to 2 s, at most 3 restarts a minute. */
const CRASH_LOOP_POLICY: RestartPolicyOptions = {
	restart: 'on-failure',
	backoff: {initialDelayMs: 200, factor: 2, maxDelayMs: 2000, jitter: 0.1},
	intensity: {maxRestarts: 3, windowMs: 60_000},
};

/** The fleet: every path a VM can take, each to its own reason. */
export const SCENARIOS: readonly Scenario[] = [
	{
		name: 'ready, finished, powered off',
		guest: ['console booting', 'payload started', 'sleep 300', 'payload ready', 'sleep 600', 'payload finished 0', 'poweroff'],
		host: {kind: 'none'},
		expected: 'SHUTDOWN',
		expectedInitiator: 'guest',
	},
	{
		name: 'reboot',
		guest: ['payload started', 'sleep 700', 'reboot'],
		host: {kind: 'none'},
		expected: 'REBOOT',
		expectedInitiator: 'guest',
	},
	{
		name: 'crash',
		guest: ['payload started', 'payload ready', 'sleep 900', 'crash'],
		host: {kind: 'none'},
		expected: 'CRASH',
		expectedInitiator: 'vmm',
	},
	{
		name: 'kernel panic',
		guest: ['payload started', 'sleep 1100', 'kmsg Kernel panic - not syncing', 'panic'],
		host: {kind: 'none'},
		expected: 'GUEST_PANIC',
		expectedInitiator: 'guest',
	},
	{
		name: 'watchdog reset',
		guest: ['payload started', 'sleep 1300', 'watchdog'],
		host: {kind: 'none'},
		expected: 'WATCHDOG_REBOOT',
		expectedInitiator: 'guest',
	},
	{
		name: 'payload never starts (hang-up)',
		guest: ['console stuck in early boot', 'hang'],
		detectHangup: true,
		host: {kind: 'none'},
		expected: 'HANGUP',
		// The guest failed to report in time; the watch in its VM actor killed it.
		expectedInitiator: 'guest',
	},
	{
		name: 'failure reason from the guest',
		guest: ['payload started', 'sleep 500', 'fail MICRODROID_PAYLOAD_VERIFICATION_FAILED|apk signature does not match', 'exit 1'],
		host: {kind: 'none'},
		expected: 'MICRODROID_PAYLOAD_VERIFICATION_FAILED',
		expectedInitiator: 'guest',
	},
	{
		name: 'graceful stop',
		guest: ['payload started', 'payload ready', 'hang'],
		host: {kind: 'stop', afterMs: 1600, timeoutMs: 3000},
		expected: 'SHUTDOWN',
		expectedInitiator: 'caller',
	},
	{
		name: 'stop ignored, killed after timeout',
		guest: ['payload started', 'ignore-stop', 'hang'],
		host: {kind: 'stop', afterMs: 1700, timeoutMs: 600},
		expected: 'KILLED',
		expectedInitiator: 'caller',
	},
	{
		name: 'kill',
		guest: ['payload started', 'payload ready', 'hang'],
		host: {kind: 'kill', afterMs: 1900},
		expected: 'KILLED',
		expectedInitiator: 'caller',
	},
	{
		name: 'crash loop: backoff, then gives up',
		guest: ['payload started', 'sleep 150', 'crash'],
		host: {kind: 'none'},
		expected: 'CRASH',
		expectedInitiator: 'vmm',
		restartPolicy: CRASH_LOOP_POLICY,
		expectedRestarts: 3,
	},
	{
		name: 'crashes twice, then runs',
		guest: ['payload started', 'sleep 150', 'crash'],
		host: {kind: 'shutdown'},
		expected: 'SHUTDOWN',
		expectedInitiator: 'supervisor',
		restartPolicy: CRASH_LOOP_POLICY,
		recoverAfter: {deaths: 2, guest: ['payload started', 'payload ready', 'hang']},
		expectedRestarts: 2,
	},
	{
		name: 'stopped by supervisor shutdown',
		guest: ['payload started', 'payload ready', 'hang'],
		host: {kind: 'shutdown'},
		expected: 'SHUTDOWN',
		expectedInitiator: 'supervisor',
	},
];
