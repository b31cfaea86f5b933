import {publishedSchemas} from '../index.js';
import {openApiDocument} from './api/openapi.js';

/** The documents generated from the code, by path from the package root, with their text. */
export function generatedDocs(): Record<string, string> {
	const text = (value: unknown) => `${JSON.stringify(value, undefined, '\t')}\n`;
	return {
		...Object.fromEntries(Object.entries(publishedSchemas()).map(([name, schema]) => [`docs/schema/${name}`, text(schema)])),
		'docs/openapi.json': text(openApiDocument()),
	};
}
