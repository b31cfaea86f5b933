import {descriptorShortage} from '../../../src/services/vmm/descriptor-headroom.js';

describe('descriptorShortage', () => {
	test('there is room for a spawn with a few pipes under the usual limit', () => {
		expect(descriptorShortage(3)).toBeUndefined();
	});

	test('a spawn that would pass RLIMIT_NOFILE is refused with the counts', () => {
		// More pipes than any limit allows (Linux has no unlimited RLIMIT_NOFILE).
		expect(descriptorShortage(1 << 30)).toMatch(/^too many open files: \d+ of RLIMIT_NOFILE \d+ are open and a spawn needs \d+ more$/);
	});
});
