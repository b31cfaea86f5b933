import {CpuAffinityError} from '../../errors.js';
/**
 * crosvm's `--cpu-affinity` grammar, exactly as crosvm parses it:
 * - a host CPU set for every vCPU: `0,1-3,5`;
 * - a set per vCPU, colon separated: `0=0:1=1-2`.
 * Ranges go from low to high, a vCPU appears once, and nothing is trimmed or skipped.
 */
export type CpuAffinity = {kind: 'global'; cpus: number[]} | {kind: 'perVcpu'; cpus: Map<number, number[]>};

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

export function parseCpuSet(text: string): number[] {
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

		if (last - first > 4096) {
			throw new CpuAffinityError(`invalid value "${part}": CPU range is too large`);
		}

		for (let cpu = first; cpu <= last; cpu++) {
			cpus.push(cpu);
		}
	}

	return cpus;
}

export function parseCpuAffinity(text: string): CpuAffinity {
	if (!text.includes('=')) {
		return {kind: 'global', cpus: parseCpuSet(text)};
	}

	const cpus = new Map<number, number[]>();
	for (const pair of text.split(':')) {
		const assignment = pair.split('=');
		if (assignment.length !== 2) {
			throw new CpuAffinityError(`invalid value "${pair}": invalid VCPU assignment syntax`);
		}

		const vcpu = parseIndex(assignment[0]!, assignment[0]!);
		if (cpus.has(vcpu)) {
			throw new CpuAffinityError(`invalid value "${pair}": VCPU index must be unique`);
		}

		cpus.set(vcpu, parseCpuSet(assignment[1]!));
	}

	return {kind: 'perVcpu', cpus};
}

