import {parseCommand, prepareArguments, type CommandSpec} from '../../tools/crosvm-sim/arguments.js';
import {buildFromEnvironment, SimEnvironmentError} from '../../tools/crosvm-sim/build.js';
import {parseBlockCurrent, parseDisk2022} from '../../tools/crosvm-sim/disk-options.js';
import {ArgumentError, HelpRequest, ValueError} from '../../tools/crosvm-sim/failures.js';
import {parseKeyValues} from '../../tools/crosvm-sim/key-values.js';
import {parseKeyValueUnsigned, parseRustUnsigned} from '../../tools/crosvm-sim/numbers.js';
import {parseSerial2022, parseSerialCurrent} from '../../tools/crosvm-sim/serial-options.js';

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

	test('2022: a positional ends option parsing', () => {
		expect(() => parseCommand({...spec, positionalEndsOptions: true}, ['kernel', '--switch'])).toThrow(new ArgumentError('Unrecognized argument: --switch'));
	});
});

describe('key-value grammar', () => {
	const schema = {keys: [['path', {kind: 'string'}], ['ro', {kind: 'bool'}], ['size', {kind: 'unsigned', bits: 32}], ['sizes', {kind: 'list'}]] as const, required: ['path']};

	test.each([
		['disk.img', {path: 'disk.img'}],
		['path=a,ro', {path: 'a', ro: true}],
		['a,ro=false,size=0x10', {path: 'a', ro: false, size: 16}],
		['"a,b",size=0b11', {path: 'a,b', size: 3}],
		['a,sizes=[1,2],size=0o17', {path: 'a', sizes: '[1,2]', size: 15}],
	])('%s', (text, values) => {
		expect(parseKeyValues(text, schema)).toEqual(values);
	});

	test.each([
		['a,bogus=1', 'unknown field `bogus`, expected one of `path`, `ro`, `size`, `sizes`'],
		['a,ro=yes', 'expected a boolean'],
		['a,size=1G', 'invalid number'],
		['a,size=-1', 'invalid number'],
		['a,size=4294967296', 'invalid number'],
		['a,path=b', 'duplicate field `path`'],
		['ro=true', 'missing field `path`'],
		['a,sizes=[1,2', 'unterminated list'],
	])('%s is refused: %s', (text, message) => {
		expect(() => parseKeyValues(text, schema)).toThrow(new ValueError(message));
	});
});

test('numbers: Rust\'s parse and the key-value forms', () => {
	expect(parseRustUnsigned('+42', 64)).toBe(42);
	expect(() => parseRustUnsigned('', 64)).toThrow('cannot parse integer from empty string');
	expect(() => parseRustUnsigned('0x10', 64)).toThrow('invalid digit found in string');
	expect(parseRustUnsigned('18446744073709551615', 64)).toBe(18_446_744_073_709_552_000);
	expect(() => parseRustUnsigned('18446744073709551616', 64)).toThrow('number too large to fit in target type');
	expect(parseKeyValueUnsigned('0xfF', 8)).toBe(255);
	expect(() => parseKeyValueUnsigned('0x100', 8)).toThrow('invalid number');
});

describe('--serial', () => {
	test('current: defaults, type first, aliases', () => {
		expect(parseSerialCurrent('')).toEqual({type: 'sink', hardware: 'serial', num: 1, console: false, earlycon: false, stdin: false});
		expect(parseSerialCurrent('file,path=/x,hardware=legacy-virtio-console,num=9,console')).toEqual({
			type: 'file', hardware: 'virtio-console', num: 9, path: '/x', console: true, earlycon: false, stdin: false,
		});
	});

	test('2022: explicit keys and booleans, a value cut at a second "="', () => {
		expect(parseSerial2022('type=file,path=/a=b,num=2,console=true')).toEqual({type: 'file', hardware: 'serial', num: 2, path: '/a', console: true, earlycon: false, stdin: false});
		expect(() => parseSerial2022('type=file,console')).toThrow('serial device console is not parseable');
		expect(() => parseSerial2022('num=0')).toThrow('serial device number must be larger than 0');
		expect(() => parseSerial2022('input=/a,stdin=true')).toThrow('Cannot specify both stdin and input options');
	});
});

test('disks: --block, and --disk/--rwdisk forcing ro', () => {
	expect(parseBlockCurrent('a.img,ro')).toEqual({path: 'a.img', readOnly: true});
	expect(parseBlockCurrent('path=a.img,o_direct=true,block_size=512')).toEqual({path: 'a.img', readOnly: false});
	expect(parseBlockCurrent('a.img,ro=true', false)).toEqual({path: 'a.img', readOnly: false});
	expect(parseDisk2022('a.img,sparse=false,id=x', true)).toEqual({path: 'a.img', readOnly: true});
	expect(() => parseDisk2022('a.img,ro=true', true)).toThrow('unrecognized `disk` option: ro');
});

test('the build from the environment', () => {
	expect(buildFromEnvironment({CROSVM_SIM_BUILD: 'aosp-2022'})).toEqual({dialect: 'aosp-2022', os: 'android', arch: 'aarch64'});
	expect(buildFromEnvironment({CROSVM_SIM_OS: 'android', CROSVM_SIM_ARCH: 'aarch64'})).toEqual({dialect: 'current', os: 'android', arch: 'aarch64'});
	expect(buildFromEnvironment({}).os).toBe('linux');
	expect(() => buildFromEnvironment({CROSVM_SIM_BUILD: '2019'})).toThrow(SimEnvironmentError);
});
