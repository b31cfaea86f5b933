import {API_ROUTES, type ApiRoute} from './schemas.js';

type JsonSchema = Record<string, unknown>;

const VERSION = '0.1.0';

function parameters(route: ApiRoute): JsonSchema[] {
	const list: JsonSchema[] = [];
	for (const [where, schema] of [['path', route.schema.params], ['query', route.schema.querystring]] as const) {
		const properties = (schema?.['properties'] ?? {}) as Record<string, JsonSchema>;
		const required = (schema?.['required'] ?? []) as string[];
		for (const [name, property] of Object.entries(properties)) {
			const {description, ...rest} = property;
			list.push({name, in: where, required: where === 'path' || required.includes(name), ...(description === undefined ? {} : {description}), schema: rest});
		}
	}

	return list;
}

function responses(route: ApiRoute): Record<string, JsonSchema> {
	const documented: Record<string, JsonSchema> = Object.fromEntries(Object.entries(route.schema.response ?? {}).map(([status, schema]) => [
		status,
		{description: Number(status) < 400 ? 'Success.' : 'The error, with its code.', content: {'application/json': {schema}}},
	]));
	if (route.produces !== undefined) {
		documented['200'] = {description: route.produces.description, content: {[route.produces.mediaType]: {schema: route.produces.schema}}};
	}

	return documented;
}

/** The OpenAPI 3.1 document of the daemon's API, built from the routes fastify serves. */
export function openApiDocument(): JsonSchema {
	const paths: Record<string, Record<string, JsonSchema>> = {};
	for (const route of API_ROUTES) {
		const path = route.url.replaceAll(/:(\w+)/g, '{$1}');
		paths[path] ??= {};
		paths[path][route.method.toLowerCase()] = {
			operationId: route.operationId,
			summary: route.summary,
			parameters: parameters(route),
			...(route.schema.body === undefined ? {} : {requestBody: {required: true, content: {'application/json': {schema: route.schema.body}}}}),
			responses: responses(route),
		};
	}

	return {
		openapi: '3.1.0',
		info: {
			title: 'vmwarden daemon API',
			version: VERSION,
			description: 'What `vmwarden serve` answers on its unix socket (HTTP/1.1, JSON). See docs/api.md.',
		},
		paths,
	};
}
