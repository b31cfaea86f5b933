import {execFile} from 'node:child_process';
import {cpSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join, resolve} from 'node:path';
import {promisify} from 'node:util';

/*
 * The package as a newcomer gets it: an unbuilt copy of the project is packed (prepack builds it),
 * the tarball is installed into a fresh project, and the README's first example is type-checked under
 * strict mode and run with plain node against the bundled simulator. About a minute: packing builds.
 */

const run = promisify(execFile);
const root = resolve('.');
const modules = realpathSync(join(root, 'node_modules'));
const STEP_MS = 120_000;
/** What a clone has before any build: the tarball must come out right from these alone. */
const PROJECT_FILES = ['package.json', 'README.md', 'LICENSE', 'tsconfig.json', 'tsconfig.build.json', 'src', 'tools', 'scripts', 'examples', 'docs'];

let work: string;

beforeAll(() => {
	work = mkdtempSync(join(tmpdir(), 'vmwarden-pack-'));
});

afterAll(() => {
	rmSync(work, {recursive: true, force: true});
});

/** The README's first TypeScript example, as a user would paste it. */
function readmeExample(): string {
	const match = /```ts\n([\s\S]*?)```/.exec(readFileSync(join(root, 'README.md'), 'utf8'));
	if (match?.[1] === undefined) {
		throw new Error('README.md has no ```ts example');
	}

	return match[1];
}

async function npm(cwd: string, args: string[]): Promise<string> {
	const {stdout} = await run('npm', args, {cwd, timeout: STEP_MS, maxBuffer: 16 * 1024 * 1024});
	return stdout;
}

test('an unbuilt copy packs, installs into a fresh project, and the README example type-checks and runs quietly', async () => {
	const clone = join(work, 'clone');
	for (const entry of PROJECT_FILES) {
		cpSync(join(root, entry), join(clone, entry), {recursive: true});
	}

	symlinkSync(modules, join(clone, 'node_modules'));
	const out = join(work, 'out');
	mkdirSync(out);
	const [packed] = JSON.parse(await npm(clone, ['pack', '--json', '--pack-destination', out])) as [{filename: string; files: Array<{path: string}>}];
	const shipped = packed.files.map(file => file.path);
	expect(shipped).toEqual(expect.arrayContaining(['LICENSE', 'README.md', 'dist/index.js', 'dist/crosvm-sim.js', 'dist/crosvm-sim/cli.js', 'dist/cli/main.js', 'examples/guests/poweroff.guest']));
	expect(shipped.filter(path => path.endsWith('.map') || path.startsWith('dist/demo/') || path.startsWith('src/') || path === 'docs/development.md')).toEqual([]);

	const consumer = join(work, 'consumer');
	mkdirSync(consumer);
	writeFileSync(join(consumer, 'package.json'), JSON.stringify({name: 'consumer', private: true, type: 'module'}));
	const tarball = join(out, packed.filename);
	try {
		await npm(consumer, ['install', '--offline', '--no-audit', '--no-fund', tarball]);
	} catch {
		// The npm cache may hold the packages but not the registry's metadata for them.
		await npm(consumer, ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball]);
	}

	writeFileSync(join(consumer, 'index.ts'), readmeExample());
	// A console-like logger and a level, without importing winston.
	writeFileSync(join(consumer, 'logger.ts'), [
		'import winston from \'winston\';',
		'import {createSupervisor, type Logger} from \'vmwarden\';',
		'const quiet: Logger = {error() {}, warn() {}, info() {}, debug() {}};',
		'createSupervisor({logger: console, logLevel: \'debug\'});',
		'createSupervisor({logger: quiet});',
		'createSupervisor({logLevel: \'silent\'});',
		'createSupervisor({logger: winston.createLogger({silent: true})});',
		// Under strict, an untyped parameter here would be an error if the option's type were a union.
		'createSupervisor({logger: {error: line => line.length, warn: line => line.length, info: line => line.length, debug: line => line.length}});',
	].join('\n'));
	await run(process.execPath, [
		join(modules, 'typescript/bin/tsc'), '--strict', '--target', 'es2022', '--module', 'nodenext', '--moduleResolution', 'nodenext',
		'--typeRoots', join(modules, '@types'), '--types', 'node', '--outDir', 'out', 'index.ts', 'logger.ts',
	], {cwd: consumer, timeout: STEP_MS});

	const {stdout, stderr} = await run(process.execPath, ['out/index.js'], {cwd: consumer, timeout: STEP_MS});
	expect(stdout).toMatch(/^VM \d+ ended: SHUTDOWN\n$/);
	expect(stderr).toBe('');

	// A guest script is checked before a VM runs it, as docs/crosvm-sim.md shows.
	const check = 'import {parseGuestScript} from \'vmwarden/crosvm-sim/guest-script\'; try { parseGuestScript(\'#!crosvm-sim-guest\\npowerof\\n\'); } catch (error) { console.log(error.message); }';
	const checked = await run(process.execPath, ['--input-type=module', '--eval', check], {cwd: consumer, timeout: STEP_MS});
	expect(checked.stdout).toBe('line 2: unknown directive "powerof"\n');
}, 5 * STEP_MS);
