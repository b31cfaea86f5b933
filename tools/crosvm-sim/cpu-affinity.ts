import {invalidValue} from './failures.js';
import {checkCpuRange, type KeyValueGrammar} from './key-values.js';

/**
 * crosvm's `parse_cpu_affinity` (src/crosvm/config.rs at f1e797a68; src/main.rs at efdcf90a4 for
 * 2022): `0,1-3,5` for every vCPU, or `0=0:1=1-2` per vCPU. The simulator keeps its own parse
 * rather than the library's `vmwarden/cpu-affinity`, which bounds range sizes for safety: crosvm
 * sets no bound, and the simulator must accept what crosvm accepts. Ranges are checked, never
 * expanded, so a huge one costs nothing here.
 */
export function parseCpuAffinity(text: string, grammar: KeyValueGrammar): string {
	if (!text.includes('=')) {
		checkCpuSet(text, grammar);
		return text;
	}

	const vcpus = new Set<bigint>();
	for (const pair of text.split(':')) {
		const assignment = pair.split('=');
		if (assignment.length !== 2) {
			throw invalidValue(pair, 'invalid VCPU assignment syntax', grammar);
		}

		const [vcpu = '', hosts = ''] = assignment;
		if (!/^\+?\d+$/.test(vcpu) || BigInt(vcpu) >= 1n << 64n) {
			throw invalidValue(vcpu, 'CPU index must be a non-negative integer', grammar);
		}

		checkCpuSet(hosts, grammar);
		if (vcpus.has(BigInt(vcpu))) {
			throw invalidValue(pair, 'VCPU index must be unique', grammar);
		}

		vcpus.add(BigInt(vcpu));
	}

	return text;
}

function checkCpuSet(text: string, grammar: KeyValueGrammar): void {
	for (const part of text.split(',')) {
		checkCpuRange(part, grammar);
	}
}
