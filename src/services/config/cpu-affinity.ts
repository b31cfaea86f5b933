import {CpuAffinityError} from '../../errors.js';
/**
 * crosvm's `--cpu-affinity` grammar, exactly as crosvm parses it:
 * - a host CPU set for every vCPU: `0,1-3,5`;
 * - a set per vCPU, colon separated: `0=0:1=1-2`.
 * Ranges go from low to high, a vCPU appears once, and nothing is trimmed or skipped.
 * crosvm's `parse_cpu_set` and `parse_cpu_affinity` (src/crosvm/config.rs) set no bound on the
 * text or on the CPUs it expands to; the bounds here are vmwarden's, checked before allocating.
 */
export type CpuAffinity = {kind: 'global'; cpus: number[]} | {kind: 'perVcpu'; cpus: Map<number, number[]>};

/** The longest `cpuAffinity` text parsed: a 4096-CPU host written out CPU by CPU fits. */
export const MAX_CPU_AFFINITY_LENGTH = 4096;

/** The most host CPUs one parse produces, counted over every vCPU's set. */
export const MAX_AFFINITY_CPUS = 4096;

/** The highest vCPU index a per-vCPU affinity may name. */
export const MAX_VCPU_INDEX = 4095;

// Rust's `usize::from_str`: ASCII digits with an optional leading `+`.
const CPU_INDEX = /^\+?\d+$/;

function parseIndex(text: string, part: string): number {
	if (!CPU_INDEX.test(text)) {
		throw new CpuAffinityError(`invalid value "${part}": CPU index must be a non-negative integer`);
	}

	const index = Number(text);
	if (!Number.isSafeInteger(index)) {
		throw new CpuAffinityError(`invalid value "${part}": CPU index must be a non-negative integer`);
	}

	return index;
}

/** A running count of the CPUs a parse produced, so that no input allocates more than the bound. */
class CpuBudget {
	#left = MAX_AFFINITY_CPUS;

	take(count: number, part: string): void {
		if (count > this.#left) {
			throw new CpuAffinityError(`invalid value "${part}": more than ${MAX_AFFINITY_CPUS} CPUs in all`);
		}

		this.#left -= count;
	}
}

function checkLength(text: string): void {
	if (text.length > MAX_CPU_AFFINITY_LENGTH) {
		throw new CpuAffinityError(`invalid value: longer than ${MAX_CPU_AFFINITY_LENGTH} characters (${text.length})`);
	}
}

function parseSet(text: string, budget: CpuBudget): number[] {
	const cpus: number[] = [];
	for (const part of text.split(',')) {
		const range = part.split('-');
		if (range.length > 2) {
			throw new CpuAffinityError(`invalid value "${part}": invalid list syntax`);
		}

		const first = parseIndex(range[0]!, part);
		const last = range.length === 2 ? parseIndex(range[1]!, part) : first;
		if (last < first) {
			throw new CpuAffinityError(`invalid value "${part}": CPU ranges must be from low to high`);
		}

		// Counted before a single CPU of the range is.
		budget.take(last - first + 1, part);
		for (let cpu = first; cpu <= last; cpu++) {
			cpus.push(cpu);
		}
	}

	return cpus;
}

/** A host CPU set, `0,1-3,5`; at most `MAX_CPU_AFFINITY_LENGTH` characters and `MAX_AFFINITY_CPUS` CPUs. */
export function parseCpuSet(text: string): number[] {
	checkLength(text);
	return parseSet(text, new CpuBudget());
}

/**
 * crosvm's `--cpu-affinity` value. Bounded before any work: the text's length, the CPUs it may
 * produce in all, and the vCPU indices, so that no input costs more than a few milliseconds.
 */
export function parseCpuAffinity(text: string): CpuAffinity {
	checkLength(text);
	const budget = new CpuBudget();
	if (!text.includes('=')) {
		return {kind: 'global', cpus: parseSet(text, budget)};
	}

	const cpus = new Map<number, number[]>();
	for (const pair of text.split(':')) {
		const assignment = pair.split('=');
		if (assignment.length !== 2) {
			throw new CpuAffinityError(`invalid value "${pair}": invalid VCPU assignment syntax`);
		}

		const vcpu = parseIndex(assignment[0]!, assignment[0]!);
		if (vcpu > MAX_VCPU_INDEX) {
			throw new CpuAffinityError(`invalid value "${pair}": VCPU index must be at most ${MAX_VCPU_INDEX}`);
		}

		if (cpus.has(vcpu)) {
			throw new CpuAffinityError(`invalid value "${pair}": VCPU index must be unique`);
		}

		cpus.set(vcpu, parseSet(assignment[1]!, budget));
	}

	return {kind: 'perVcpu', cpus};
}

