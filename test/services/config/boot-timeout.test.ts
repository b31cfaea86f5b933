import {describe, expect, test} from '@jest/globals';
import {BOOT_HANGUP_TIMEOUT_MS, NESTED_BOOT_HANGUP_TIMEOUT_MS, defaultBootHangupTimeoutMs, isNestedVirtualization} from '../../../src/services/config/boot-timeout.js';

describe('boot hang-up timeout', () => {
	test('the hypervisor CPU flag means nested virtualization', () => {
		expect(isNestedVirtualization(() => 'processor\t: 0\nflags\t\t: fpu vme de pse hypervisor lahf_lm\n')).toBe(true);
	});

	test('a CPU flag merely containing the word does not count', () => {
		const bareMetal = 'processor\t: 0\nflags\t\t: fpu vme de pse lahf_lm\nbugs\t\t: hypervisor_like\n';
		// The flag is checked on the flags line only; the other signs are the host's own.
		expect(isNestedVirtualization(() => bareMetal)).toBe(isNestedVirtualization(() => ''));
	});

	test('the default is 10 s or 100 s, matching the detection', () => {
		expect(defaultBootHangupTimeoutMs()).toBe(isNestedVirtualization() ? NESTED_BOOT_HANGUP_TIMEOUT_MS : BOOT_HANGUP_TIMEOUT_MS);
		expect([BOOT_HANGUP_TIMEOUT_MS, NESTED_BOOT_HANGUP_TIMEOUT_MS]).toEqual([10_000, 100_000]);
	});
});
