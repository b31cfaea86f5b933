import {buildFromEnvironment} from '../../tools/crosvm-sim/build.js';
import {interpretCommandLine, knownRunFlags} from '../../tools/crosvm-sim/command-line.js';
import {makeScratch, runSim} from '../helpers/sim-process.js';
import {BUILDS, CONFORMANCE, type BuildName, type ConformanceRow} from './conformance.js';

const scratch = makeScratch('crosvm-sim-conformance-');
const guest = scratch.guest('guest', 'console booted', 'poweroff');

afterAll(scratch.remove);

function substitute(text: string): string {
	return text.replaceAll('$K', guest).replaceAll('$D', scratch.dir);
}

function simBuild(name: BuildName) {
	const {build, os, arch} = BUILDS[name];
	return buildFromEnvironment({CROSVM_SIM_BUILD: build, CROSVM_SIM_OS: os, CROSVM_SIM_ARCH: arch});
}

/** The status and error text the simulator's command-line reader gives, without starting anything. */
function interpret(name: BuildName, row: ConformanceRow): {status: number; error: string} {
	const interpretation = interpretCommandLine(simBuild(name), row.args.map(argument => substitute(argument)));
	return interpretation.kind === 'refused' ? {status: interpretation.status, error: interpretation.message} : {status: 0, error: ''};
}

const rows = CONFORMANCE.flatMap(group => group.rows.map(row => ({build: group.build, row})));

const title = ({build, row}: (typeof rows)[number]) => `${build}: ${row.args.join(' ') || '(nothing)'} -> ${row.status}`;

describe('every row, read in-process', () => {
	test.each(rows.map(entry => [title(entry), entry] as const))('%s', (_title, {build, row}) => {
		const result = interpret(build, row);
		expect(result.status).toBe(row.status);
		expect(result.error).toContain(row.error === undefined ? '' : substitute(row.error));
	});
});

describe('rows marked binary, through the built simulator', () => {
	test.each(rows.filter(({row}) => row.binary === true).map(entry => [title(entry), entry] as const))('%s', async (_title, {build, row}) => {
		const result = await runSim(row.args.map(argument => substitute(argument)), BUILDS[build]);
		expect({status: result.exitCode, signal: result.signal}).toEqual({status: row.status, signal: undefined});
		if (row.status === 0) {
			expect(result.stderr).not.toMatch(/ERROR/);
		} else {
			expect(result.stderr).toContain(substitute(row.error ?? ''));
		}
	});
});

test.each(Object.keys(BUILDS) as BuildName[])('%s: every run flag the build knows has an accepted and a refused row', name => {
	const mentions = (row: ConformanceRow, names: string[]) => row.args.some(argument => names.some(flag => argument === flag || argument.startsWith(`${flag}=`) || (!flag.startsWith('--') && argument.startsWith(flag))));
	const own = rows.filter(({build}) => build === name || BUILDS[build].build === BUILDS[name].build).map(({row}) => row);
	const uncovered = knownRunFlags(simBuild(name)).filter(flag => {
		const names = flag.split('|');
		return !(own.some(row => row.status === 0 && mentions(row, names)) && own.some(row => row.status !== 0 && mentions(row, names)));
	});
	expect(uncovered).toEqual([]);
});
