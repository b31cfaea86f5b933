import {describe, expect, test} from '@jest/globals';
import {InvalidConfigError, VmControlError} from '../../../src/errors.js';
import {checkBalloonBytes, MAX_BALLOON_STATS_BYTES, parseCrosvmBalloonStats} from '../../../src/services/control/balloon.js';

// crosvm's own output (serde_json::to_string_pretty of VmResponse::BalloonStats), field order as its struct.
const CROSVM_OUTPUT = `{
  "BalloonStats": {
    "stats": {
      "swap_in": 0,
      "swap_out": 0,
      "major_faults": 120,
      "minor_faults": 98304,
      "free_memory": 812646400,
      "total_memory": 1048576000,
      "available_memory": 900000000,
      "disk_caches": 4096,
      "hugetlb_allocations": null,
      "hugetlb_failures": null,
      "shared_memory": null,
      "unevictable_memory": null
    },
    "balloon_actual": 134217728
  }
}
`;

describe('parseCrosvmBalloonStats', () => {
	test('reads crosvm\'s pretty JSON into typed statistics, leaving out what the guest did not report', () => {
		expect(parseCrosvmBalloonStats(CROSVM_OUTPUT)).toEqual({
			actualBytes: 134_217_728,
			stats: {swapIn: 0, swapOut: 0, majorFaults: 120, minorFaults: 98_304, freeMemory: 812_646_400, totalMemory: 1_048_576_000, availableMemory: 900_000_000, diskCaches: 4096},
		});
	});

	test.each([
		['not JSON', 'Ok'],
		['another response', '"Ok"'],
		['no stats', '{"BalloonStats": {"balloon_actual": 0}}'],
		['a negative size', '{"BalloonStats": {"stats": {}, "balloon_actual": -1}}'],
		['a size beyond 2^53', '{"BalloonStats": {"stats": {}, "balloon_actual": 18446744073709551615}}'],
		['a string count', '{"BalloonStats": {"stats": {"free_memory": "lots"}, "balloon_actual": 0}}'],
		['too much text', `${' '.repeat(MAX_BALLOON_STATS_BYTES)}{}`],
	])('refuses %s with VmControlError', (_what, text) => {
		expect(() => parseCrosvmBalloonStats(text)).toThrow(VmControlError);
	});

	test('ignores statistics it does not know (a newer crosvm)', () => {
		expect(parseCrosvmBalloonStats('{"BalloonStats": {"stats": {"oom_kills": 3}, "balloon_actual": 0}}')).toEqual({actualBytes: 0, stats: {}});
	});
});

test('checkBalloonBytes takes whole bytes from 0 to 2^53 - 1 only', () => {
	expect(checkBalloonBytes(0)).toBe(0);
	expect(checkBalloonBytes(Number.MAX_SAFE_INTEGER)).toBe(Number.MAX_SAFE_INTEGER);
	for (const bad of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53, '1024', undefined]) {
		expect(() => checkBalloonBytes(bad)).toThrow(InvalidConfigError);
	}
});
