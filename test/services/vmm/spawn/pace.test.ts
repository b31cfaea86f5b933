import {describe, expect, test} from '@jest/globals';
import {spawnTurn} from '../../../../src/services/vmm/spawn/pace.js';

/** Lets whatever turn was granted end (its `setImmediate` runs), so that a test starts in a fresh one. */
async function nextTurn(): Promise<void> {
	for (let round = 0; round < 3; round++) {
		await new Promise(resolve => {
			setImmediate(resolve);
		});
	}
}

/** Whether `step` finishes before an immediate queued just before it runs. */
async function withinThisTurn(step: () => Promise<void>): Promise<boolean> {
	let later = false;
	setImmediate(() => {
		later = true;
	});
	await step();
	return !later;
}

describe('spawnTurn', () => {
	test('a lone caller goes at once', async () => {
		await nextTurn();
		expect(await withinThisTurn(async () => spawnTurn())).toBe(true);
	});

	test('a second caller in the same event-loop turn waits for the next', async () => {
		await nextTurn();
		expect(await withinThisTurn(async () => {
			await spawnTurn({});
			await spawnTurn({});
		})).toBe(false);
	});

	test('a caller goes on in a turn granted to the same owner', async () => {
		await nextTurn();
		const vmm = {};
		expect(await withinThisTurn(async () => {
			await spawnTurn(vmm);
			await spawnTurn(vmm);
		})).toBe(true);
	});

	test('an owner does not go on in a turn granted to no one in particular, nor the other way round', async () => {
		await nextTurn();
		const vmm = {};
		expect(await withinThisTurn(async () => {
			await spawnTurn();
			await spawnTurn(vmm);
		})).toBe(false);
		await nextTurn();
		expect(await withinThisTurn(async () => {
			await spawnTurn(vmm);
			await spawnTurn();
		})).toBe(false);
	});

	test('a waiter granted a later turn holds it for its owner', async () => {
		await nextTurn();
		const vmm = {};
		await spawnTurn({});
		await spawnTurn(vmm);
		const order: string[] = [];
		const other = spawnTurn({}).then(() => order.push('other'));
		await spawnTurn(vmm);
		order.push('vmm');
		await other;
		expect(order).toEqual(['vmm', 'other']);
	});
});
