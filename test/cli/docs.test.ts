import {readdirSync, readFileSync} from 'node:fs';
import {join} from 'node:path';
import {Ajv} from 'ajv';
import {describe, expect, test} from '@jest/globals';
import {generatedDocs} from '../../src/cli/docs.js';
import {openApiDocument} from '../../src/cli/api/openapi.js';
import {API_ROUTES} from '../../src/cli/api/schemas.js';
import {publishedSchemas} from '../../src/services/cli-config/schema.js';

const EXAMPLES = 'examples/configs';

function compile(name: string) {
	const schema = publishedSchemas()[name];
	if (schema === undefined) {
		throw new Error(`no schema ${name}`);
	}

	// strictRequired would refuse `required` in the anyOf/not branches, which name properties declared above them.
	return new Ajv({allowUnionTypes: true, strict: true, strictRequired: false}).compile(schema);
}

describe('the generated documents', () => {
	test.each(Object.entries(generatedDocs()))('%s is up to date (npm run docs:cli)', (file, text) => {
		expect(readFileSync(file, 'utf8')).toBe(text);
	});

	test('the OpenAPI document has one operation per route, with the schemas fastify validates', () => {
		const document = openApiDocument() as {paths: Record<string, Record<string, {operationId: string; requestBody?: {content: Record<string, {schema: unknown}>}}>>};
		const operations = Object.values(document.paths).flatMap(methods => Object.values(methods));
		expect(operations.map(operation => operation.operationId).sort()).toEqual(API_ROUTES.map(route => route.operationId).sort());
		const create = document.paths['/v1/vms']?.['post'];
		expect(create?.requestBody?.content['application/json']?.schema).toBe(API_ROUTES.find(route => route.operationId === 'createVm')?.schema.body);
	});
});

describe('the example configs against the published schemas', () => {
	const files = readdirSync(EXAMPLES).filter(name => name.endsWith('.json'));

	test.each(files)('%s is valid in its format', name => {
		const json = JSON.parse(readFileSync(join(EXAMPLES, name), 'utf8')) as unknown;
		const validate = compile(name.startsWith('android-') ? 'android-vm-config.schema.json' : 'vmwarden-config.schema.json');
		expect(validate(json) ? [] : validate.errors).toEqual([]);
	});

	test.each([
		['vmwarden-config.schema.json', {params: 'no kernel'}],
		['vmwarden-config.schema.json', {kernel: 'k', bootloader: 'b'}],
		['vmwarden-config.schema.json', {kernel: 'k', memoryMib: 0}],
		['vmwarden-config.schema.json', {kernel: 'k', unknown: 1}],
		['vmwarden-config.schema.json', {kernel: 'k', taskProfiles: ['a,b']}],
		['android-vm-config.schema.json', {kernel: 'k'}],
		['android-vm-config.schema.json', {kernel: 'k', platform_version: '~1.0', disks: [{partitions: [{label: 'a', path: 'p'}], writable: false}]}],
		['android-vm-config.schema.json', {kernel: 'k', platform_version: '~1.0', memoryMib: 1}],
	])('%s refuses %j', (name, json) => {
		expect(compile(name)(json)).toBe(false);
	});
});
