import {fileURLToPath} from 'node:url';
import {InvalidConfigError} from './errors.js';

/**
 * The crosvm simulator shipped with vmwarden, as an absolute path for `crosvmPath`: plain `node`
 * does not put a package's executables on PATH, so `crosvmPath: 'crosvm-sim'` only works under npx
 * or npm scripts.
 *
 * Resolved from the package root (`../dist/...`), so it names the same file whether this module
 * runs built from dist/ or as source from src/.
 */
export const crosvmSimPath = fileURLToPath(new URL('../dist/crosvm-sim/cli.js', import.meta.url));

/** The example guest scripts shipped in the package's examples/guests/ (docs/crosvm-sim.md describes each). */
export const EXAMPLE_GUESTS = [
	'abort', 'crash', 'exit-code', 'failure-reason', 'hang', 'ignores-sigterm', 'ignores-stop', 'killed-by-signal',
	'panic', 'payload-error', 'payload-finished', 'poweroff', 'reboot', 'slow-boot', 'watchdog',
] as const;
export type ExampleGuest = typeof EXAMPLE_GUESTS[number];

/**
 * The absolute path of a shipped example guest script, to pass as the kernel of a VM run by the
 * simulator: `exampleGuestPath('poweroff')`. Throws `InvalidConfigError` for a name not shipped.
 */
export function exampleGuestPath(name: ExampleGuest): string {
	if (!(EXAMPLE_GUESTS as readonly unknown[]).includes(name)) {
		throw new InvalidConfigError('name', `is no example guest: one of ${EXAMPLE_GUESTS.join(', ')}`, {subject: 'argument'});
	}

	return fileURLToPath(new URL(`../examples/guests/${name}.guest`, import.meta.url));
}
