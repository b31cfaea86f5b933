import {existsSync, readFileSync} from 'node:fs';

/** The reference's boot hang-up timeout on bare metal. */
export const BOOT_HANGUP_TIMEOUT_MS = 10_000;

/** The reference's boot hang-up timeout under nested virtualization (slow, so ten times longer). */
export const NESTED_BOOT_HANGUP_TIMEOUT_MS = 100_000;

/**
 * Whether this host is itself a virtual machine, so that VMs run under nested virtualization.
 * - x86: the `hypervisor` CPU flag in /proc/cpuinfo (CPUID leaf 1, ECX bit 31, which hypervisors set
 *   for their guests and real CPUs never do);
 * - any architecture: /sys/hypervisor/type (Xen) or a `hypervisor` node in the device tree (arm64
 *   guests of KVM/pKVM and Xen).
 */
export function isNestedVirtualization(readCpuinfo: () => string = () => readFileSync('/proc/cpuinfo', 'utf8')): boolean {
	try {
		if (/^flags\s*:.*\bhypervisor\b/m.test(readCpuinfo())) {
			return true;
		}
	} catch {
		// No /proc/cpuinfo: fall through to the other signs.
	}

	return existsSync('/sys/hypervisor/type') || existsSync('/proc/device-tree/hypervisor');
}

let cachedDefault: number | undefined;

/** 10 s, or 100 s under nested virtualization; detected once per process. */
export function defaultBootHangupTimeoutMs(): number {
	cachedDefault ??= isNestedVirtualization() ? NESTED_BOOT_HANGUP_TIMEOUT_MS : BOOT_HANGUP_TIMEOUT_MS;
	return cachedDefault;
}

/** Which default boot hang-up timeout applies on this host, as a log line says it. */
export function describeDefaultBootHangupTimeout(): string {
	const timeoutMs = defaultBootHangupTimeoutMs();
	return `Boot hang-up timeout ${timeoutMs} ms: the default ${timeoutMs === NESTED_BOOT_HANGUP_TIMEOUT_MS ? 'under nested virtualization (this host is a VM)' : 'on bare metal'}; set bootHangupTimeoutMs to change it`;
}
