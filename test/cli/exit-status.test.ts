import {readFileSync} from 'node:fs';
import {describe, expect, test} from '@jest/globals';
import {DeathReason} from '../../src/services/death/reason.js';
import type {VmDeath} from '../../src/types.js';
import {EXIT_STATUS, exitStatusOf} from '../../src/cli/exit-status.js';

function death(reason: DeathReason, initiator: VmDeath['initiator'] = 'guest'): VmDeath {
	return {cid: 2048, reason, exitCode: undefined, signal: undefined, failureReason: undefined, failureContext: undefined, payloadState: 'Starting', stderrTail: '', initiator};
}

describe('vmwarden run\'s exit status', () => {
	test('the guest\'s own endings keep crosvm\'s --extended-status codes', () => {
		expect([DeathReason.SHUTDOWN, DeathReason.REBOOT, DeathReason.CRASH, DeathReason.GUEST_PANIC, DeathReason.WATCHDOG_REBOOT].map(reason => exitStatusOf(death(reason)))).toEqual([0, 32, 33, 34, 36]);
	});

	test('a death the user\'s Ctrl-C caused is 130, whatever its reason', () => {
		expect(exitStatusOf(death(DeathReason.SHUTDOWN, 'caller'))).toBe(130);
		expect(exitStatusOf(death(DeathReason.KILLED, 'caller'))).toBe(130);
	});

	test('no reason shares a status with vmwarden\'s own failures (1, 2, 3, 69, 130)', () => {
		const own = new Set<number>([EXIT_STATUS.failed, EXIT_STATUS.usage, EXIT_STATUS.spawnFailed, EXIT_STATUS.unavailable, EXIT_STATUS.interrupted]);
		for (const reason of Object.values(DeathReason)) {
			expect(own.has(exitStatusOf(death(reason)))).toBe(false);
		}
	});

	test('docs/cli.md lists every status', () => {
		const documented = new Set([...readFileSync('docs/cli.md', 'utf8').matchAll(/^\| (\d+) \|/gm)].map(match => Number(match[1])));
		expect([...new Set(Object.values(EXIT_STATUS))].filter(status => !documented.has(status))).toEqual([]);
	});
});
