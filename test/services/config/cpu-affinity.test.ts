import {describe, expect, test} from '@jest/globals';
import {CpuAffinityError} from '../../../src/errors.js';
import {MAX_AFFINITY_CPUS, MAX_CPU_AFFINITY_LENGTH, MAX_VCPU_INDEX, parseCpuAffinity, parseCpuSet} from '../../../src/services/config/cpu-affinity.js';

describe('parseCpuAffinity: crosvm\'s grammar', () => {
	test('a global set and a set per vCPU', () => {
		expect(parseCpuAffinity('0,1-3,5')).toEqual({kind: 'global', cpus: [0, 1, 2, 3, 5]});
		expect(parseCpuAffinity('0=0:1=1-2')).toEqual({kind: 'perVcpu', cpus: new Map([[0, [0]], [1, [1, 2]]])});
		expect(parseCpuAffinity('+1')).toEqual({kind: 'global', cpus: [1]});
		expect(parseCpuSet('4-4')).toEqual([4]);
	});

	test.each([
		['3-1', 'invalid value "3-1": CPU ranges must be from low to high'],
		['0,', 'invalid value "": CPU index must be a non-negative integer'],
		['1-2-3', 'invalid value "1-2-3": invalid list syntax'],
		['-1', 'invalid value "-1": CPU index must be a non-negative integer'],
		['1-x', 'invalid value "1-x": CPU index must be a non-negative integer'],
		['99999999999999999999', 'invalid value "99999999999999999999": CPU index must be a non-negative integer'],
		['0=0,1=1', 'invalid value "0=0,1=1": invalid VCPU assignment syntax'],
		['0=0:0=1', 'invalid value "0=1": VCPU index must be unique'],
		['x=0', 'invalid value "x": CPU index must be a non-negative integer'],
		['0=0=1', 'invalid value "0=0=1": invalid VCPU assignment syntax'],
	])('%p is refused: %s', (text, message) => {
		expect(() => parseCpuAffinity(text)).toThrow(new CpuAffinityError(message));
	});
});

describe('parseCpuAffinity: bounded before any work', () => {
	test('the text: exactly the bound is read, one more character is refused', () => {
		const longest = `0${',0'.repeat((MAX_CPU_AFFINITY_LENGTH - 2) / 2)}0`;
		expect(longest).toHaveLength(MAX_CPU_AFFINITY_LENGTH);
		expect(parseCpuAffinity(longest)).toMatchObject({kind: 'global'});
		expect(() => parseCpuAffinity(`${longest},`)).toThrow(new CpuAffinityError(`invalid value: longer than ${MAX_CPU_AFFINITY_LENGTH} characters (${MAX_CPU_AFFINITY_LENGTH + 1})`));
		expect(() => parseCpuSet(`${longest},`)).toThrow(new CpuAffinityError(`invalid value: longer than ${MAX_CPU_AFFINITY_LENGTH} characters (${MAX_CPU_AFFINITY_LENGTH + 1})`));
	});

	test('the 140 KB text that took seconds and gigabytes is refused at once', () => {
		const text = Array.from({length: 20_001}, () => '0-4096').join(',');
		expect(text.length).toBeGreaterThan(140_000);
		expect(() => parseCpuAffinity(text)).toThrow(new CpuAffinityError(`invalid value: longer than ${MAX_CPU_AFFINITY_LENGTH} characters (${text.length})`));
	});

	test('the CPUs: a range up to the bound is read, a range past it is refused before it is expanded', () => {
		expect(parseCpuSet(`0-${MAX_AFFINITY_CPUS - 1}`)).toHaveLength(MAX_AFFINITY_CPUS);
		expect(() => parseCpuSet(`0-${MAX_AFFINITY_CPUS}`)).toThrow(new CpuAffinityError(`invalid value "0-${MAX_AFFINITY_CPUS}": more than ${MAX_AFFINITY_CPUS} CPUs in all`));
		expect(() => parseCpuSet('0-9007199254740990')).toThrow(new CpuAffinityError(`invalid value "0-9007199254740990": more than ${MAX_AFFINITY_CPUS} CPUs in all`));
	});

	test('the CPUs are counted over the whole text, every vCPU\'s set included', () => {
		expect(() => parseCpuAffinity('0-2047,0-2048')).toThrow(new CpuAffinityError(`invalid value "0-2048": more than ${MAX_AFFINITY_CPUS} CPUs in all`));
		expect(parseCpuAffinity('0-2047,0-2047')).toMatchObject({kind: 'global'});
		expect(() => parseCpuAffinity('0=0-4095:1=7')).toThrow(new CpuAffinityError(`invalid value "7": more than ${MAX_AFFINITY_CPUS} CPUs in all`));
		expect(parseCpuAffinity('0=0-4094:1=7').kind).toBe('perVcpu');
	});

	test('the vCPU index', () => {
		expect(parseCpuAffinity(`${MAX_VCPU_INDEX}=1`)).toEqual({kind: 'perVcpu', cpus: new Map([[MAX_VCPU_INDEX, [1]]])});
		expect(() => parseCpuAffinity(`${MAX_VCPU_INDEX + 1}=1`)).toThrow(new CpuAffinityError(`invalid value "${MAX_VCPU_INDEX + 1}=1": VCPU index must be at most ${MAX_VCPU_INDEX}`));
	});
});
