import {describe, expect, test} from '@jest/globals';
import {RateLimitedLog} from '../../../src/services/logging/rate-limited-log.js';
import {silentLogger} from '../../helpers/vm-fixture.js';

function setUp(burst: number) {
	let clock = 1_000_000;
	const logger = silentLogger();
	const log = new RateLimitedLog(logger, {what: 'odd things', burst, intervalMs: 10_000, now: () => clock});
	return {
		log,
		advance: (ms: number) => {
			clock += ms;
		},
		messages: () => logger.lines.map(line => `${line.level} ${line.message}`),
	};
}

describe('RateLimitedLog', () => {
	test('within the burst: each logged, nothing more, not even at close', () => {
		const {log, messages} = setUp(2);
		log.note(() => 'one');
		log.note(() => 'two');
		log.close();
		expect(messages()).toEqual(['warn one', 'warn two']);
		expect(log.seen).toBe(2);
	});

	test('past the burst: a notice, a count per interval, the rest and the total at close', () => {
		const {log, advance, messages} = setUp(1);
		let built = 0;
		const note = () => {
			log.note(() => `odd ${++built}`);
		};

		note();
		note();
		note();
		advance(9999);
		note();
		advance(1);
		note();
		note();
		advance(25_000);
		log.close();
		expect(messages()).toEqual([
			'warn odd 1',
			'warn More odd things: from now on counted, not logged one by one',
			'warn 4 more odd things in the last 10 s',
			'warn 1 more odd things in the last 25 s',
			'warn 6 odd things in all',
		]);
		// Messages past the burst are never even built.
		expect(built).toBe(1);
	});

	test('close is once; notes after it are ignored', () => {
		const {log, messages} = setUp(0);
		log.note(() => 'never');
		log.close();
		log.close();
		log.note(() => 'late');
		expect(messages()).toEqual([
			'warn More odd things: from now on counted, not logged one by one',
			'warn 1 more odd things in the last 1 s',
			'warn 1 odd things in all',
		]);
		expect(log.seen).toBe(1);
	});
});

describe('RateLimitedLog summaries', () => {
	test('nothing new since the last count: the close gives only the total', () => {
		const {log, advance, messages} = setUp(1);
		log.note(() => 'first');
		log.note(() => 'second');
		advance(10_000);
		log.note(() => 'third');
		log.close();
		expect(messages()).toEqual([
			'warn first',
			'warn More odd things: from now on counted, not logged one by one',
			'warn 2 more odd things in the last 10 s',
			'warn 3 odd things in all',
		]);
	});
});
