import {describe, expect, test} from '@jest/globals';
import fc from 'fast-check';
import {CpuAffinityError} from '../../../src/errors.js';
import {MAX_AFFINITY_CPUS, MAX_CPU_AFFINITY_LENGTH, MAX_VCPU_INDEX, parseCpuAffinity, type CpuAffinity} from '../../../src/services/config/cpu-affinity.js';

/** crosvm's `parse_cpu_set` and `parse_cpu_affinity`, line for line, with no bound at all. */
function crosvmSet(text: string): number[] {
	const cpus: number[] = [];
	for (const part of text.split(',')) {
		const range = part.split('-');
		if (range.length > 2) {
			throw new Error(`invalid value "${part}": invalid list syntax`);
		}

		const index = (digits: string) => {
			if (!/^\+?\d+$/.test(digits) || !Number.isSafeInteger(Number(digits))) {
				throw new Error(`invalid value "${part}": CPU index must be a non-negative integer`);
			}

			return Number(digits);
		};

		const first = index(range[0]!);
		const last = range.length === 2 ? index(range[1]!) : first;
		if (last < first) {
			throw new Error(`invalid value "${part}": CPU ranges must be from low to high`);
		}

		for (let cpu = first; cpu <= last; cpu++) {
			cpus.push(cpu);
		}
	}

	return cpus;
}

function crosvmAffinity(text: string): CpuAffinity {
	if (!text.includes('=')) {
		return {kind: 'global', cpus: crosvmSet(text)};
	}

	const cpus = new Map<number, number[]>();
	for (const pair of text.split(':')) {
		const assignment = pair.split('=');
		if (assignment.length !== 2) {
			throw new Error(`invalid value "${pair}": invalid VCPU assignment syntax`);
		}

		const vcpu = Number(assignment[0]);
		if (!/^\+?\d+$/.test(assignment[0]!) || !Number.isSafeInteger(vcpu)) {
			throw new Error(`invalid value "${assignment[0]}": CPU index must be a non-negative integer`);
		}

		if (cpus.has(vcpu)) {
			throw new Error(`invalid value "${pair}": VCPU index must be unique`);
		}

		cpus.set(vcpu, crosvmSet(assignment[1]!));
	}

	return {kind: 'perVcpu', cpus};
}

const cpuCount = (affinity: CpuAffinity) => (affinity.kind === 'global' ? affinity.cpus.length : [...affinity.cpus.values()].reduce((sum, cpus) => sum + cpus.length, 0));
const largestVcpu = (affinity: CpuAffinity) => (affinity.kind === 'global' ? -1 : Math.max(-1, ...affinity.cpus.keys()));

const index = fc.oneof(fc.nat({max: 9}).map(String), fc.nat({max: 5000}).map(String), fc.constantFrom('+1', '', 'x', '-0', '00', '18446744073709551615'));
const set = fc.array(fc.oneof(index, fc.tuple(index, index).map(([low, high]) => `${low}-${high}`)), {minLength: 1, maxLength: 6}).map(parts => parts.join(','));
const affinityText = fc.oneof(
	set,
	fc.array(fc.tuple(index, set).map(([vcpu, cpus]) => `${vcpu}=${cpus}`), {minLength: 1, maxLength: 5}).map(pairs => pairs.join(':')),
	fc.string({unit: fc.constantFrom('0', '1', '9', ',', '-', '=', ':', '+', ' '), maxLength: 30}),
	fc.string({maxLength: 30}),
);

function outcome(parse: () => CpuAffinity): CpuAffinity | {error: string} {
	try {
		return parse();
	} catch (error) {
		return {error: (error as Error).message};
	}
}

describe('parseCpuAffinity (property-based)', () => {
	test('agrees with crosvm\'s unbounded parser wherever the bounds allow, and refuses with a typed error otherwise', () => {
		fc.assert(fc.property(affinityText, text => {
			const ours = outcome(() => parseCpuAffinity(text));
			const crosvm = outcome(() => crosvmAffinity(text));
			if ('error' in ours) {
				expect(() => parseCpuAffinity(text)).toThrow(CpuAffinityError);
			}

			const withinBounds = !('error' in crosvm) && cpuCount(crosvm) <= MAX_AFFINITY_CPUS && largestVcpu(crosvm) <= MAX_VCPU_INDEX && text.length <= MAX_CPU_AFFINITY_LENGTH;
			if (withinBounds || !('error' in ours) || !/more than|at most|longer than/.test(ours.error)) {
				expect(ours).toEqual(crosvm);
			}
		}), {numRuns: 500});
	});

	test('arbitrary text of any length: a result within the bounds or a CpuAffinityError', () => {
		fc.assert(fc.property(fc.oneof(affinityText, fc.string({maxLength: 5000}), affinityText.map(text => text.repeat(300))), text => {
			try {
				const affinity = parseCpuAffinity(text);
				expect(cpuCount(affinity)).toBeLessThanOrEqual(MAX_AFFINITY_CPUS);
				expect(largestVcpu(affinity)).toBeLessThanOrEqual(MAX_VCPU_INDEX);
			} catch (error) {
				expect(error).toBeInstanceOf(CpuAffinityError);
			}
		}), {numRuns: 300});
	});
});
