import {parseCommand, prepareArguments, type CommandSpec} from '../../tools/crosvm-sim/arguments.js';
import {buildFromEnvironment, SimEnvironmentError} from '../../tools/crosvm-sim/build.js';
import {parseArguments2022, PrintHelp, type Argument2022} from '../../tools/crosvm-sim/arguments-2022.js';
import {parseCpuAffinity} from '../../tools/crosvm-sim/cpu-affinity.js';
import {diskParser, parseDisk} from '../../tools/crosvm-sim/disk-options.js';
import {ArgumentError, HelpRequest} from '../../tools/crosvm-sim/failures.js';
import {parseKeyValues, type KeyValueSchema} from '../../tools/crosvm-sim/key-values.js';
import {parseRustUnsigned} from '../../tools/crosvm-sim/numbers.js';
import {parseSerial} from '../../tools/crosvm-sim/serial-options.js';

describe('prepareArguments (crosvm\'s split at the first "=")', () => {
	test.each([
		[['--mem=1024'], ['--mem', '1024']],
		[['--serial=type=file,path=/a'], ['--serial', 'type=file,path=/a']],
		[['-m=1'], ['-m', '1']],
		[['-x=1 console=hvc0'], ['-x', '1 console=hvc0']],
		[['--params', 'a=b'], ['--params', 'a=b']],
		[['-='], ['-', '']],
		[['-'], ['-']],
		[['-h'], ['--help']],
		[['--params=-x=1'], ['--params', '-x=1']],
	])('%j becomes %j', (input, output) => {
		expect(prepareArguments(input)).toEqual(output);
	});
});

describe('parseCommand (argh)', () => {
	const spec: CommandSpec = {
		flags: [
			{long: '--switch', kind: 'switch'},
			{long: '--one', short: '-o', kind: 'single'},
			{long: '--many', kind: 'repeated'},
			{long: '--number', kind: 'single', parse: text => parseRustUnsigned(text, 8)},
		],
		positionals: ['KERNEL'],
		requiredPositionals: 0,
		usage: 'usage text',
	};

	test('options around the positional, values that look like flags, repeated switches', () => {
		const parsed = parseCommand(spec, ['--switch', '--one', '-x', 'kernel', '--many', 'a', '--switch', '--many', '--', '--number', '7']);
		expect(parsed.positionals).toEqual(['kernel']);
		expect(Object.fromEntries(parsed.flags)).toEqual({'--switch': [true, true], '--one': ['-x'], '--many': ['a', '--'], '--number': [7]});
	});

	test('-- ends options: a later flag is a positional', () => {
		expect(parseCommand(spec, ['--', '--switch']).positionals).toEqual(['--switch']);
	});

	test.each([
		[['--one', 'a', '-o', 'b'], "Error parsing option '-o' with value 'b': duplicate values provided"],
		[['--number', '256'], "Error parsing option '--number' with value '256': number too large to fit in target type"],
		[['--number'], "No value provided for option '--number'."],
		[['--nope'], 'Unrecognized argument: --nope'],
		[['k1', 'k2'], 'Unrecognized argument: k2'],
		[['--help', '--switch'], 'Trailing arguments are not allowed after `help`.'],
	])('%j: %s', (args, message) => {
		expect(() => parseCommand(spec, args)).toThrow(new ArgumentError(message));
	});

	test('help anywhere before -- is a help request with the usage', () => {
		expect(() => parseCommand(spec, ['kernel', 'help'])).toThrow(HelpRequest);
		expect(parseCommand(spec, ['--', 'help']).positionals).toEqual(['help']);
	});
});

// crosvm's src/crosvm/argument.rs at efdcf90a4: the parser `run` used until 2022-06-13.
describe('parseArguments2022 (crosvm\'s own parser of 2022)', () => {
	const list: Argument2022[] = [
		{long: '', value: 'required'},
		{long: 'switch', value: 'disallowed'},
		{long: 'one', short: 'o', value: 'required'},
		{long: 'help', short: 'h', value: 'disallowed'},
	];
	const parse = (args: string[]) => {
		const calls: Array<[string, string | undefined]> = [];
		parseArguments2022(args, list, (name, value) => {
			if (name === 'help') {
				throw new PrintHelp();
			}

			calls.push([name, value]);
		});
		return calls;
	};

	test('a switch followed by a word leaves the word to the positional, which ends options', () => {
		expect(parse(['--switch', 'kernel', '--one', 'x'])).toEqual([['switch', undefined], ['', 'kernel'], ['', '--one'], ['', 'x']]);
	});

	test('values: glued with "=", the next word, or glued to a short name; never a word starting with "-"', () => {
		expect(parse(['--one=-x=1', '-oy', '-o', 'z'])).toEqual([['one', '-x=1'], ['one', 'y'], ['one', 'z']]);
		expect(() => parse(['--one', '-x'])).toThrow(new ArgumentError('expected parameter value: one'));
	});

	test.each([
		[['--switch=1'], 'unexpected parameter value: switch'],
		[['--=1'], 'syntax error: expected parameter name before `=`'],
		[['--one='], 'syntax error: expected parameter value after `=`'],
		[['-'], 'syntax error: expected argument short name after `-`'],
		[['--nope', 'k'], 'unknown argument: nope'],
		[['--help', 'k'], 'unexpected parameter value: help'],
	])('%j: %s', (args, message) => {
		expect(() => parse(args)).toThrow(new ArgumentError(message));
	});

	test('-h asks for help, and so does a final --help', () => {
		expect(() => parse(['-h', '--nope'])).toThrow(PrintHelp);
		expect(() => parse(['--switch', '--help'])).toThrow(PrintHelp);
	});
});

// serde_keyvalue/src/key_values.rs at f1e797a68 (current) and at efdcf90a4 (2022).
describe('key-value grammar', () => {
	const schema = {
		keys: [['path', {kind: 'string'}], ['ro', {kind: 'bool'}], ['size', {kind: 'unsigned', bits: 32}], ['sizes', {kind: 'seq', element: {kind: 'unsigned', bits: 16}}]],
		aliases: {read_only: 'ro'},
		required: ['path'],
	} satisfies KeyValueSchema;

	test.each([
		['disk.img', {path: 'disk.img'}],
		['path=a,ro', {path: 'a', ro: true}],
		['a,ro=false,size=0x10', {path: 'a', ro: false, size: 16}],
		['"a,b",size=0b11', {path: 'a,b', size: 3}],
		['\'a,"b\',read_only', {path: 'a,"b', ro: true}],
		['"a\\"b\\\\c"', {path: 'a"b\\c'}],
		['a,sizes=[1,2],size=0o17', {path: 'a', sizes: [1, 2], size: 15}],
		['/x/a=b', {path: '/x/a=b'}],
	])('current: %s', (text, values) => {
		expect(parseKeyValues(text, schema)).toEqual(values);
	});

	test.each([
		['a,bogus=1', 'unknown field `bogus`, expected one of `path`, `ro`, `size`, `sizes`, `read_only`'],
		['a,ro=yes', 'expected a boolean at position 5'],
		['a,ro=', 'expected a boolean at position 5'],
		['a,size=1G', 'invalid characters for number or number does not fit into its destination type at position 7'],
		['a,size=0X10', 'invalid characters for number'],
		['a,size=+1', 'invalid characters for number'],
		['a,size=4294967296', 'invalid characters for number'],
		['a,path=b', 'duplicate field `path`'],
		['ro', 'missing field `path`'],
		['a,sizes=[1,2', 'expected \']\''],
		['a"b', '" and \' can only be used in quoted strings at position 1'],
		['"a\\nb"', 'expected a string'],
	])('current: %s is refused: %s', (text, message) => {
		expect(() => parseKeyValues(text, schema)).toThrow(message);
	});

	const schema2022 = {keys: schema.keys.slice(0, 3), required: ['path']} satisfies KeyValueSchema;

	test.each([
		['a,ro=', {path: 'a', ro: true}],
		['a,size=+7', {path: 'a', size: 7}],
		['a,path2=x', 'unknown field `path2`'],
		['a,size=0X1', 'expected a number or number contains invalid digits at position 7'],
		['a,size=4294967296', 'provided number does not fit in the destination type'],
		['"a\\,b', 'non-terminated string'],
		['a[1]', {path: 'a[1]'}],
	])('2022: %s', (text, expected) => {
		if (typeof expected === 'string') {
			expect(() => parseKeyValues(text, schema2022, '2022')).toThrow(expected);
		} else {
			expect(parseKeyValues(text, schema2022, '2022')).toEqual(expected);
		}
	});
});

test('numbers: Rust\'s parse and the key-value forms', () => {
	expect(parseRustUnsigned('+42', 64)).toBe(42);
	expect(() => parseRustUnsigned('', 64)).toThrow('cannot parse integer from empty string');
	expect(() => parseRustUnsigned('0x10', 64)).toThrow('invalid digit found in string');
	expect(parseRustUnsigned('18446744073709551615', 64)).toBe(18_446_744_073_709_552_000);
	expect(() => parseRustUnsigned('18446744073709551616', 64)).toThrow('number too large to fit in target type');
});

describe('--serial', () => {
	test('current: defaults, type first, a bare key name is that key, aliases', () => {
		expect(parseSerial('', 'current')).toEqual({type: 'sink', hardware: 'serial', num: 1, console: false, earlycon: false, stdin: false});
		expect(parseSerial('console', 'current')).toEqual({type: 'sink', hardware: 'serial', num: 1, console: true, earlycon: false, stdin: false});
		expect(parseSerial('file,path=/x,hardware=legacy-virtio-console,num=9,console,out_timestamp', 'current')).toEqual({
			type: 'file', hardware: 'virtio-console', num: 9, path: '/x', console: true, earlycon: false, stdin: false,
		});
	});

	test('2022: the key-value grammar of the time; a value runs to the next comma', () => {
		expect(parseSerial('type=file,path=/a=b,num=2,console', '2022')).toEqual({type: 'file', hardware: 'serial', num: 2, path: '/a=b', console: true, earlycon: false, stdin: false});
		expect(() => parseSerial('type=unix-stream', '2022')).toThrow('failed to parse key-value arguments: unknown variant `unix-stream`');
		expect(() => parseSerial('num=0', '2022')).toThrow('invalid value "0": Serial port num must be at least 1');
		expect(() => parseSerial('input=/a,stdin=true', '2022')).toThrow('too many arguments: Cannot specify both stdin and input options');
	});
});

test('disks: --block, and --disk/--rwdisk forcing ro as each build did', () => {
	expect(parseDisk('a.img,ro', 'current')).toEqual({path: 'a.img', readOnly: true});
	expect(parseDisk('path=a.img,o_direct=true,block_size=512,async_executor=uring', 'current')).toEqual({path: 'a.img', readOnly: false});
	const current = {dialect: 'current', os: 'linux', arch: 'x86_64'} as const;
	const legacy = {dialect: 'aosp-2022', os: 'android', arch: 'aarch64'} as const;
	expect(diskParser(current, false)('a.img')).toEqual({path: 'a.img', readOnly: true});
	expect(diskParser(current, true)('a.img,ro')).toEqual({path: 'a.img', readOnly: false});
	expect(diskParser(legacy, true)('a.img,ro')).toEqual({path: 'a.img', readOnly: true});
	expect(() => parseDisk('a.img,direct=true', '2022')).toThrow('unknown field `direct`');
});

// crosvm's parse_cpu_affinity: src/crosvm/config.rs at f1e797a68, src/main.rs at efdcf90a4.
test('cpu affinity: crosvm sets no bound on a range, and the simulator neither', () => {
	expect(parseCpuAffinity('0-18446744073709551615', 'current')).toBe('0-18446744073709551615');
	expect(parseCpuAffinity('0=0-100000000:1=+1', 'current')).toBe('0=0-100000000:1=+1');
	expect(() => parseCpuAffinity('0-18446744073709551616', 'current')).toThrow('invalid CPU index 18446744073709551616');
	expect(() => parseCpuAffinity('1-2-3', 'current')).toThrow('invalid CPU index 2-3');
	expect(() => parseCpuAffinity('1-2-3', '2022')).toThrow('invalid value "1-2-3": invalid list syntax');
});

test('the build from the environment', () => {
	expect(buildFromEnvironment({CROSVM_SIM_BUILD: 'aosp-2022'})).toEqual({dialect: 'aosp-2022', os: 'android', arch: 'aarch64'});
	expect(buildFromEnvironment({CROSVM_SIM_OS: 'android', CROSVM_SIM_ARCH: 'aarch64'})).toEqual({dialect: 'current', os: 'android', arch: 'aarch64'});
	expect(buildFromEnvironment({}).os).toBe('linux');
	expect(() => buildFromEnvironment({CROSVM_SIM_BUILD: '2019'})).toThrow(SimEnvironmentError);
});
