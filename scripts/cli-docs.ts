/**
 * Writes the documents generated from the code: the config formats' JSON Schemas (docs/schema/)
 * and the daemon's OpenAPI document (docs/openapi.json). `--check` only says whether they are
 * up to date (test/cli/docs.test.ts asks the same).
 */
import {mkdirSync, readFileSync, writeFileSync} from 'node:fs';
import {dirname} from 'node:path';
import {generatedDocs} from '../src/cli/docs.js';

const check = process.argv.includes('--check');
let stale = 0;
for (const [file, text] of Object.entries(generatedDocs())) {
	let current: string | undefined;
	try {
		current = readFileSync(file, 'utf8');
	} catch {
		current = undefined;
	}

	if (current === text) {
		continue;
	}

	if (check) {
		console.error(`${file} is out of date: run npm run docs:cli`);
		stale += 1;
	} else {
		mkdirSync(dirname(file), {recursive: true});
		writeFileSync(file, text);
		console.log(`wrote ${file}`);
	}
}

process.exitCode = stale === 0 ? 0 : 1;
