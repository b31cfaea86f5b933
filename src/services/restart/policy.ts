import {InvalidConfigError} from '../../errors.js';
import {checkTimeoutMs} from '../config/timeouts.js';
import {DeathReason, FAILURE_TEXT_REASONS} from '../death/reason.js';

/** When a VM is started again after it died (systemd's `Restart=`, OTP's restart type). */
export type RestartMode = 'never' | 'on-failure' | 'always';

/** What a guest reboot (`REBOOT`) means: start the VM again at once (libvirt's `on_reboot`), or a death like any other. */
export type RebootAction = 'restart' | 'death';

/** Exponential backoff between restarts (systemd's `RestartSec` steps, Kubernetes' CrashLoopBackOff). */
export interface BackoffPolicy {
	/** The delay before the first restart, in ms. */
	initialDelayMs: number;
	/** Each further restart waits this many times longer (1 to 100; 1 is a constant delay). */
	factor: number;
	/** The longest delay, in ms. */
	maxDelayMs: number;
	/** Up to this fraction of each delay is taken off at random (0 to 1), so that a fleet does not restart in step. */
	jitter: number;
}

/** At most `maxRestarts` restarts within any `windowMs` (OTP's intensity and period, systemd's `StartLimitBurst` and `StartLimitIntervalSec`). */
export interface IntensityPolicy {
	maxRestarts: number;
	windowMs: number;
}

/** A VM's restart policy, every field filled in (see docs/supervision.md). */
export interface RestartPolicy {
	restart: RestartMode;
	/** The death reasons `on-failure` restarts. */
	failureReasons: readonly DeathReason[];
	onReboot: RebootAction;
	backoff: BackoffPolicy;
	/** A life that runs healthily this long resets the backoff to its first step. */
	resetAfterMs: number;
	intensity: IntensityPolicy;
	/** How many deaths the handle keeps (the newest). */
	historySize: number;
}

/** A restart policy as given to `createSupervisor` or `createVm`: every field optional. */
export interface RestartPolicyOptions {
	restart?: RestartMode;
	failureReasons?: readonly DeathReason[];
	onReboot?: RebootAction;
	backoff?: Partial<BackoffPolicy>;
	resetAfterMs?: number;
	intensity?: Partial<IntensityPolicy>;
	historySize?: number;
}

/**
 * The deaths `on-failure` restarts by default: everything that is not the guest's clean power-off or
 * reboot. A stop or kill the caller or supervisor asked for never counts, whatever its reason.
 */
export const DEFAULT_FAILURE_REASONS: readonly DeathReason[] = [
	DeathReason.CRASH,
	DeathReason.GUEST_PANIC,
	DeathReason.HANGUP,
	DeathReason.WATCHDOG_REBOOT,
	DeathReason.ERROR,
	DeathReason.UNKNOWN,
	DeathReason.INFRASTRUCTURE_ERROR,
	DeathReason.KILLED,
	...[...FAILURE_TEXT_REASONS].filter(reason => reason !== DeathReason.HANGUP),
];

/** `never`: today's behaviour, a dead VM stays dead. The rest takes effect once a restart is asked for. */
export const DEFAULT_RESTART_POLICY: RestartPolicy = {
	restart: 'never',
	failureReasons: DEFAULT_FAILURE_REASONS,
	onReboot: 'death',
	// Kubernetes' CrashLoopBackOff steps, scaled down: 1 s doubling to 1 min.
	backoff: {initialDelayMs: 1000, factor: 2, maxDelayMs: 60_000, jitter: 0.1},
	// Kubernetes resets its backoff after 10 min of running.
	resetAfterMs: 600_000,
	// systemd's StartLimitBurst=5 within StartLimitIntervalSec=10 s, over a window long enough for the backoff.
	intensity: {maxRestarts: 5, windowMs: 300_000},
	historySize: 10,
};

const RESTART_MODES: readonly RestartMode[] = ['never', 'on-failure', 'always'];
const REBOOT_ACTIONS: readonly RebootAction[] = ['restart', 'death'];
const DEATH_REASONS: ReadonlySet<string> = new Set(Object.values(DeathReason));
const MAX_FACTOR = 100;
const MAX_RESTARTS = 1_000_000;
const MAX_HISTORY = 1000;

function checkObject(field: string, value: unknown): Record<string, unknown> {
	if (typeof value !== 'object' || value === null || Array.isArray(value)) {
		throw new InvalidConfigError(field, 'must be an object');
	}

	return value as Record<string, unknown>;
}

function checkOneOf<T extends string>(field: string, value: unknown, allowed: readonly T[]): T {
	const found = allowed.find(candidate => candidate === value);
	if (found === undefined) {
		throw new InvalidConfigError(field, `must be one of ${allowed.join(', ')}, not ${JSON.stringify(value) ?? typeof value}`);
	}

	return found;
}

function checkNumber(field: string, value: unknown, min: number, max: number, integer: boolean): number {
	if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max || (integer && !Number.isInteger(value))) {
		throw new InvalidConfigError(field, `must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max}, not ${typeof value === 'number' ? String(value) : typeof value}`);
	}

	return value;
}

function checkReasons(field: string, value: unknown): DeathReason[] {
	if (!Array.isArray(value) || value.length > DEATH_REASONS.size) {
		throw new InvalidConfigError(field, `must be an array of at most ${DEATH_REASONS.size} death reasons`);
	}

	return value.map((reason: unknown, index) => {
		if (typeof reason !== 'string' || !DEATH_REASONS.has(reason)) {
			throw new InvalidConfigError(`${field}[${index}]`, `${JSON.stringify(reason) ?? typeof reason} is not a death reason`);
		}

		return reason as DeathReason;
	});
}

/**
 * Checks a restart policy given from outside, field by field (typed `InvalidConfigError` naming the
 * field, as `restartPolicy.backoff.factor`), and fills in what it leaves out from `base`.
 */
export function resolveRestartPolicy(options: unknown, base: RestartPolicy = DEFAULT_RESTART_POLICY, field = 'restartPolicy'): RestartPolicy {
	if (options === undefined) {
		return base;
	}

	const given = checkObject(field, options);
	const backoff = given['backoff'] === undefined ? {} : checkObject(`${field}.backoff`, given['backoff']);
	const intensity = given['intensity'] === undefined ? {} : checkObject(`${field}.intensity`, given['intensity']);
	const pick = <T>(value: unknown, fallback: T, check: (value: unknown) => T): T => (value === undefined ? fallback : check(value));
	const resolved: RestartPolicy = {
		restart: pick(given['restart'], base.restart, value => checkOneOf(`${field}.restart`, value, RESTART_MODES)),
		failureReasons: pick(given['failureReasons'], base.failureReasons, value => checkReasons(`${field}.failureReasons`, value)),
		onReboot: pick(given['onReboot'], base.onReboot, value => checkOneOf(`${field}.onReboot`, value, REBOOT_ACTIONS)),
		backoff: {
			initialDelayMs: pick(backoff['initialDelayMs'], base.backoff.initialDelayMs, value => checkTimeoutMs(`${field}.backoff.initialDelayMs`, value)),
			factor: pick(backoff['factor'], base.backoff.factor, value => checkNumber(`${field}.backoff.factor`, value, 1, MAX_FACTOR, false)),
			maxDelayMs: pick(backoff['maxDelayMs'], base.backoff.maxDelayMs, value => checkTimeoutMs(`${field}.backoff.maxDelayMs`, value)),
			jitter: pick(backoff['jitter'], base.backoff.jitter, value => checkNumber(`${field}.backoff.jitter`, value, 0, 1, false)),
		},
		resetAfterMs: pick(given['resetAfterMs'], base.resetAfterMs, value => checkTimeoutMs(`${field}.resetAfterMs`, value)),
		intensity: {
			maxRestarts: pick(intensity['maxRestarts'], base.intensity.maxRestarts, value => checkNumber(`${field}.intensity.maxRestarts`, value, 0, MAX_RESTARTS, true)),
			windowMs: pick(intensity['windowMs'], base.intensity.windowMs, value => checkTimeoutMs(`${field}.intensity.windowMs`, value)),
		},
		historySize: pick(given['historySize'], base.historySize, value => checkNumber(`${field}.historySize`, value, 1, MAX_HISTORY, true)),
	};
	if (resolved.backoff.maxDelayMs < resolved.backoff.initialDelayMs) {
		throw new InvalidConfigError(`${field}.backoff.maxDelayMs`, `${resolved.backoff.maxDelayMs} is less than initialDelayMs ${resolved.backoff.initialDelayMs}`);
	}

	return resolved;
}

/** Whether the policy can ever restart the VM: otherwise the supervisor does not watch it at all. */
export function mayRestart(policy: RestartPolicy): boolean {
	return policy.restart !== 'never' || policy.onReboot === 'restart';
}

/**
 * Which members a group restarts when one fails (OTP's strategies): the failed one only, all of
 * them, or the failed one and those created after it.
 */
export type GroupStrategy = 'one-for-one' | 'one-for-all' | 'rest-for-one';

/** A supervision group's policy: its strategy, and its own backoff and intensity over all its restarts. */
export interface GroupPolicy {
	strategy: GroupStrategy;
	backoff: BackoffPolicy;
	/** The group running this long without a restart resets its backoff. */
	resetAfterMs: number;
	intensity: IntensityPolicy;
}

export interface GroupPolicyOptions {
	strategy?: GroupStrategy;
	backoff?: Partial<BackoffPolicy>;
	resetAfterMs?: number;
	intensity?: Partial<IntensityPolicy>;
}

const GROUP_STRATEGIES: readonly GroupStrategy[] = ['one-for-one', 'one-for-all', 'rest-for-one'];

/** Checks a group policy given from outside (typed `InvalidConfigError` naming the field) and fills in the defaults. */
export function resolveGroupPolicy(options: unknown, field = 'groupPolicy'): GroupPolicy {
	const given = options === undefined ? {} : checkObject(field, options);
	const strategy = given['strategy'] === undefined ? 'one-for-one' : checkOneOf(`${field}.strategy`, given['strategy'], GROUP_STRATEGIES);
	// The timing fields are a restart policy's: checked by the same code, under this field's name.
	const {backoff, resetAfterMs, intensity} = resolveRestartPolicy({backoff: given['backoff'], resetAfterMs: given['resetAfterMs'], intensity: given['intensity']}, DEFAULT_RESTART_POLICY, field);
	return {strategy, backoff, resetAfterMs, intensity};
}
