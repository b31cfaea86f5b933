import {crosvmCommand, type CrosvmDialect} from '../../../src/services/crosvm/command.js';
import {interpretCommandLine} from '../../../tools/crosvm-sim/command-line.js';
import {LINUX_X86} from '../../helpers/golden-configs.js';

/**
 * A kernel command line that starts with `-` must reach the guest as written. Today's crosvm
 * rewrites an argument `-h` to `--help` and splits `-x=1` at its `=` before parsing (src/main.rs at
 * f1e797a68, `prepare_argh_args`); the 2022 parser refused a separate value starting with `-`
 * (src/crosvm/argument.rs at efdcf90a4). The builder glues such a value to its flag, and the
 * simulator, which plays both builds, reads back exactly the value given.
 */
const BUILDS = {
	'aosp-2022': {dialect: 'aosp-2022', os: 'android', arch: 'aarch64'},
	current: {dialect: 'current', os: 'linux', arch: 'x86_64'},
} as const;

const cases: Array<[CrosvmDialect, string]> = (['aosp-2022', 'current'] as const).flatMap(dialect => ['-h', '-x', '-', '-x=1 quiet', '--help'].map(params => [dialect, params] as [CrosvmDialect, string]));

test.each(cases)('%s: params %j are glued to --params and reach the guest unchanged', (dialect, params) => {
	const {args} = crosvmCommand({kernel: '/vm/kernel', params}, {cid: 10, dialect, target: LINUX_X86});
	expect(args).toContain(`--params=${params}`);
	expect(args).not.toContain('--params');

	const interpretation = interpretCommandLine(BUILDS[dialect], args);
	expect(interpretation.kind).toBe('run');
	expect(interpretation.kind === 'run' && interpretation.config.params).toEqual([params]);
});

test('a params value that does not start with "-" stays a separate argument', () => {
	const {args} = crosvmCommand({kernel: '/vm/kernel', params: 'console=hvc0 -h'}, {cid: 10, target: LINUX_X86});
	expect(args).toEqual(expect.arrayContaining(['--params', 'console=hvc0 -h']));
});
