/**
 * Writes docs/charts/<machine>.mmd and .svg for every machine in machines.ts, from the machine
 * definitions. Run: `npx tsx scripts/charts/generate.ts` (`--check` only reports stale charts and
 * exits 1 if there are any).
 */
import {existsSync, mkdirSync, readFileSync, writeFileSync} from 'node:fs';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {renderChart} from './charts.js';
import {chartedMachines} from './machines.js';

export const chartsDirectory = fileURLToPath(new URL('../../docs/charts/', import.meta.url));

const check = process.argv.includes('--check');
const stale: string[] = [];
mkdirSync(chartsDirectory, {recursive: true});
for (const {name, machine} of chartedMachines) {
	const files = renderChart(machine);
	for (const [file, content] of [[`${name}.mmd`, files.mermaid], [`${name}.svg`, files.svg]] as const) {
		const target = path.join(chartsDirectory, file);
		const current = existsSync(target) ? readFileSync(target, 'utf8') : undefined;
		if (current === content) {
			continue;
		}

		stale.push(file);
		if (!check) {
			writeFileSync(target, content);
		}
	}
}

if (check && stale.length > 0) {
	console.error(`Stale charts (run npx tsx scripts/charts/generate.ts): ${stale.join(', ')}`);
	process.exitCode = 1;
} else {
	console.log(stale.length === 0 ? 'Charts are up to date.' : `Wrote ${stale.join(', ')}`);
}
