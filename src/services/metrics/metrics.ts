import {performance} from 'node:perf_hooks';
import {Counter, Gauge, Histogram, Registry} from 'prom-client';
import type {Observable, Subscription} from 'rxjs';
import type {StateValue} from 'xstate';
import {DEFAULT_CID_RANGE, type CidRange} from '../cids/range.js';
import type {VmEvent} from '../../types.js';
import {isLaunching, runningRegion, topState} from './vm-timing.js';

/** What the metrics read of a VM: any `Vm` handle. */
export interface MetricsVm {
	readonly cid: number;
	readonly events$: Observable<VmEvent>;
	readonly snapshots$: Observable<{value: StateValue}>;
	readonly actor: {getSnapshot(): {value: StateValue}};
}

/** What the metrics read of a supervisor: any `Supervisor`. */
export interface MetricsSupervisor {
	readonly events$: Observable<VmEvent | {type: string; cid?: number}>;
	get(cid: number): MetricsVm | undefined;
	vms(): MetricsVm[];
}

export interface CreateMetricsOptions {
	/** Default: a new registry (so several supervisors in one process can each have theirs). */
	registry?: Registry;
	/** Prepended to every metric name. Default `vmwarden_`. */
	prefix?: string;
	/** Histogram buckets in seconds, for start and stop latencies. */
	buckets?: number[];
}

export interface VmwardenMetrics {
	readonly registry: Registry;
	/**
	 * Counts a standalone VM (`createVm`); call before `start()` for its start latencies. Returns an
	 * unsubscribe, which also drops the VM from the gauges.
	 */
	observeVm(vm: MetricsVm): () => void;
	/**
	 * Counts every VM of a supervisor from its `events$`, and their start latencies from their
	 * snapshots; `cidRange` (the supervisor's, default `DEFAULT_CID_RANGE`) gives the free CIDs.
	 */
	observeSupervisor(supervisor: MetricsSupervisor, options?: {cidRange?: CidRange}): () => void;
}

/** Seconds: 10 ms to 2 min, for VMs that start in tens of milliseconds (crosvm-sim) to minutes (nested QEMU). */
export const DEFAULT_LATENCY_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

const VM_STATES = ['NotStarted', 'Running', 'Dead', 'Failed'] as const;

/** One VM's moments, in `performance.now()` milliseconds. */
interface VmTimes {
	startRequested?: number;
	stopRequested?: number;
}

/**
 * Prometheus metrics for vmwarden (prom-client): VMs by state and suspended VMs (read when scraped),
 * starts, start failures and deaths by reason (counted from events), start latencies to Running,
 * payload Started and Ready, and stop latency (histograms, seconds), and free CIDs of a supervisor.
 * It subscribes to what vmwarden publishes; nothing in a VM or supervisor changes. See
 * docs/operations.md.
 */
export function createMetrics(options: CreateMetricsOptions = {}): VmwardenMetrics {
	const registry = options.registry ?? new Registry();
	const prefix = options.prefix ?? 'vmwarden_';
	const buckets = options.buckets ?? DEFAULT_LATENCY_BUCKETS;
	const observed = new Map<number, MetricsVm>();
	const supervisors = new Set<{supervisor: MetricsSupervisor; cidRange: CidRange}>();
	const times = new Map<number, VmTimes>();
	const allVms = (): MetricsVm[] => [...observed.values(), ...[...supervisors].flatMap(({supervisor}) => supervisor.vms())];

	new Gauge({
		name: `${prefix}vms`,
		help: 'VMs by lifecycle state (supervised VMs until their CID is released)',
		labelNames: ['state'],
		registers: [registry],
		collect() {
			const counts = new Map<string, number>(VM_STATES.map(state => [state, 0]));
			for (const vm of allVms()) {
				const state = topState(vm.actor.getSnapshot().value);
				counts.set(state, (counts.get(state) ?? 0) + 1);
			}

			for (const [state, count] of counts) {
				this.set({state}, count);
			}
		},
	});
	new Gauge({
		name: `${prefix}vms_suspended`,
		help: 'Running VMs whose vCPUs are suspended',
		registers: [registry],
		collect() {
			this.set(allVms().filter(vm => runningRegion(vm.actor.getSnapshot().value, 'execution') === 'suspended').length);
		},
	});
	new Gauge({
		name: `${prefix}cids_free`,
		help: 'CIDs of the supervisors\' ranges that no VM holds',
		registers: [registry],
		collect() {
			let free = 0;
			for (const {supervisor, cidRange} of supervisors) {
				free += cidRange.last - cidRange.first + 1 - supervisor.vms().length;
			}

			this.set(free);
		},
	});
	const starts = new Counter({name: `${prefix}vm_starts_total`, help: 'VMs whose VMM was spawned', registers: [registry]});
	const startFailures = new Counter({name: `${prefix}vm_start_failures_total`, help: 'VMs that failed to start', registers: [registry]});
	const deaths = new Counter({name: `${prefix}vm_deaths_total`, help: 'VM deaths by reason', labelNames: ['reason'], registers: [registry]});
	const startLatency = new Histogram({
		name: `${prefix}vm_start_seconds`,
		help: 'From start() to the VM running (phase="running"), to its payload Started and Ready',
		labelNames: ['phase'],
		buckets,
		registers: [registry],
	});
	const stopLatency = new Histogram({name: `${prefix}vm_stop_seconds`, help: 'From a stop request to the VM\'s death', buckets, registers: [registry]});

	const timesOf = (cid: number): VmTimes => {
		let found = times.get(cid);
		if (found === undefined) {
			found = {};
			times.set(cid, found);
		}

		return found;
	};

	const sinceStart = (cid: number, phase: string): void => {
		const {startRequested} = timesOf(cid);
		if (startRequested !== undefined) {
			startLatency.observe({phase}, (performance.now() - startRequested) / 1000);
		}
	};

	const countEvent = (event: VmEvent): void => {
		switch (event.type) {
			case 'started': {
				starts.inc();
				sinceStart(event.cid, 'running');
				break;
			}

			case 'payload': {
				if (event.to === 'Started' || event.to === 'Ready') {
					sinceStart(event.cid, event.to === 'Started' ? 'payload_started' : 'payload_ready');
				}

				break;
			}

			case 'stopping': {
				timesOf(event.cid).stopRequested ??= performance.now();
				break;
			}

			case 'failed': {
				startFailures.inc();
				times.delete(event.cid);
				break;
			}

			case 'died': {
				deaths.inc({reason: event.death.reason});
				const {stopRequested} = timesOf(event.cid);
				if (stopRequested !== undefined) {
					stopLatency.observe((performance.now() - stopRequested) / 1000);
				}

				times.delete(event.cid);
				break;
			}

			default: {
				break;
			}
		}
	};

	// START is not an event: its moment is the snapshot that enters the launch.
	const watchStart = (vm: MetricsVm): Subscription => {
		const cid = vm.cid;
		const subscription = vm.snapshots$.subscribe(snapshot => {
			if (isLaunching(snapshot.value)) {
				timesOf(cid).startRequested ??= performance.now();
			} else if (topState(snapshot.value) !== 'NotStarted') {
				queueMicrotask(() => {
					subscription.unsubscribe();
				});
			}
		});
		return subscription;
	};

	return {
		registry,
		observeVm(vm) {
			observed.set(vm.cid, vm);
			const snapshots = watchStart(vm);
			const events = vm.events$.subscribe(countEvent);
			return () => {
				snapshots.unsubscribe();
				events.unsubscribe();
				observed.delete(vm.cid);
			};
		},
		observeSupervisor(supervisor, observeOptions = {}) {
			const entry = {supervisor, cidRange: observeOptions.cidRange ?? DEFAULT_CID_RANGE};
			supervisors.add(entry);
			const starting = new Map<number, Subscription>();
			const events = supervisor.events$.subscribe(event => {
				if (event.type === 'supervisor.cid.allocated' && event.cid !== undefined) {
					const vm = supervisor.get(event.cid);
					if (vm !== undefined) {
						starting.set(event.cid, watchStart(vm));
					}
				} else if (event.type === 'supervisor.cid.released' && event.cid !== undefined) {
					starting.get(event.cid)?.unsubscribe();
					starting.delete(event.cid);
					times.delete(event.cid);
				} else if (isVmEvent(event)) {
					countEvent(event);
				}
			});
			return () => {
				events.unsubscribe();
				for (const subscription of starting.values()) {
					subscription.unsubscribe();
				}

				supervisors.delete(entry);
			};
		},
	};
}

const VM_EVENT_TYPES: ReadonlySet<string> = new Set<VmEvent['type']>(['started', 'payload', 'payload-refused', 'hangup', 'stopping', 'killing', 'died', 'failed']);

function isVmEvent(event: VmEvent | {type: string}): event is VmEvent {
	return VM_EVENT_TYPES.has(event.type);
}
