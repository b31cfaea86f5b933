import {Registry} from 'prom-client';
import {DeathReason, MAX_CONFIG_FILE_BYTES, vmConfigSchema} from '../../index.js';

/**
 * The daemon's API, declared once: fastify validates requests and serializes replies with these
 * schemas, and `openApiDocument` publishes the same ones (docs/openapi.json).
 */

type JsonSchema = Record<string, unknown>;

const nullable = (type: string): JsonSchema => ({type: [type, 'null']});

export const deathSchema: JsonSchema = {
	type: 'object',
	description: 'How a VM died (the library\'s VmDeath).',
	additionalProperties: false,
	required: ['cid', 'reason', 'exitCode', 'signal', 'failureReason', 'failureContext', 'payloadState', 'stderrTail', 'initiator'],
	properties: {
		cid: {type: 'integer'},
		reason: {type: 'string', enum: Object.values(DeathReason)},
		exitCode: {...nullable('integer'), description: 'The VMM\'s exit status, when it exited.'},
		signal: {...nullable('string'), description: 'The signal that killed the VMM, when one did.'},
		failureReason: {...nullable('string'), description: 'What the guest wrote to its failure channel, up to the first |.'},
		failureContext: {...nullable('string'), description: 'The failure text after its first |.'},
		payloadState: {type: 'string'},
		stderrTail: {type: 'string', description: 'The last few KiB the VMM wrote to stderr.'},
		initiator: {type: 'string', enum: ['guest', 'vmm', 'caller', 'supervisor']},
	},
};

export const vmSchema: JsonSchema = {
	type: 'object',
	additionalProperties: false,
	required: ['cid', 'state', 'payloadState', 'pid', 'death'],
	properties: {
		cid: {type: 'integer'},
		state: {type: 'string', enum: ['NotStarted', 'Running', 'Dead', 'Failed']},
		payloadState: {type: 'string'},
		pid: {...nullable('integer'), description: 'The VMM\'s pid, once it ran.'},
		death: {anyOf: [deathSchema, {type: 'null'}]},
	},
};

export const errorSchema: JsonSchema = {
	type: 'object',
	additionalProperties: false,
	required: ['error'],
	properties: {
		error: {
			type: 'object',
			additionalProperties: false,
			required: ['code', 'message'],
			properties: {
				code: {type: 'string', description: 'The VmwardenError code (INVALID_CONFIG, NO_AVAILABLE_CID, ...), NOT_FOUND, or BAD_REQUEST.'},
				message: {type: 'string'},
				field: {type: 'string', description: 'For INVALID_CONFIG: the field, as a path into the config.'},
				reason: {type: 'string', description: 'For INVALID_CONFIG: why the field was refused.'},
			},
		},
	},
};

const reapedSchema: JsonSchema = {
	type: 'object',
	additionalProperties: false,
	required: ['cid', 'outcome', 'cidReleased', 'reason'],
	properties: {
		cid: {type: 'integer'},
		pid: nullable('integer'),
		outcome: {type: 'string', enum: ['killed', 'gone', 'pid-reused', 'kill-timed-out', 'refused', 'unreadable']},
		cidReleased: {type: 'boolean'},
		tempDirRemoved: {type: 'boolean'},
		reason: {type: 'string'},
	},
};

export const healthSchema: JsonSchema = {
	type: 'object',
	additionalProperties: false,
	required: ['status', 'pid', 'vms', 'reaped'],
	properties: {
		status: {type: 'string', enum: ['ok', 'shutting-down'], description: 'shutting-down once SIGTERM or SIGINT arrived: no VM is created any more.'},
		pid: {type: 'integer', description: 'The daemon\'s pid.'},
		vms: {type: 'integer', description: 'How many VMs hold a CID.'},
		reaped: {type: 'array', items: reapedSchema, description: 'What this daemon found of a previous instance\'s VMs in --state-dir.'},
	},
};

const cidParams: JsonSchema = {
	type: 'object',
	additionalProperties: false,
	required: ['cid'],
	properties: {cid: {type: 'string', pattern: '^[0-9]{1,10}$', description: 'The VM\'s vsock CID.'}},
};

const emptyObject: JsonSchema = {type: 'object', additionalProperties: false, properties: {}};

/** One route of the API: what fastify registers and what the OpenAPI document describes. */
export interface ApiRoute {
	method: 'GET' | 'POST';
	/** fastify's spelling (`/v1/vms/:cid`). */
	url: string;
	operationId: 'health' | 'listVms' | 'createVm' | 'getVm' | 'stopVm' | 'killVm' | 'console' | 'events' | 'metrics';
	summary: string;
	schema: {
		params?: JsonSchema;
		querystring?: JsonSchema;
		body?: JsonSchema;
		response?: Record<number, JsonSchema>;
	};
	/** A 200 reply that is not one JSON document (a stream, Prometheus text): what it is. */
	produces?: {mediaType: string; description: string; schema: JsonSchema};
}

/** The largest request body: a config, as a config file may be. */
export const MAX_BODY_BYTES = MAX_CONFIG_FILE_BYTES;

export const API_ROUTES: readonly ApiRoute[] = [
	{
		method: 'GET',
		url: '/v1/health',
		operationId: 'health',
		summary: 'Whether the daemon serves, how many VMs it holds, what it reaped at start.',
		schema: {response: {200: healthSchema}},
	},
	{
		method: 'GET',
		url: '/v1/vms',
		operationId: 'listVms',
		summary: 'Every VM holding a CID, in CID order.',
		schema: {response: {200: {type: 'object', additionalProperties: false, required: ['vms'], properties: {vms: {type: 'array', items: vmSchema}}}}},
	},
	{
		method: 'POST',
		url: '/v1/vms',
		operationId: 'createVm',
		summary: 'Creates a VM from a config (files by absolute path, under the daemon\'s file policy) and starts it.',
		schema: {
			body: {
				type: 'object',
				additionalProperties: false,
				required: ['config'],
				properties: {
					config: vmConfigSchema({absolutePaths: true}),
					payloadChannel: {type: 'boolean', description: 'Give the guest the payload report channel. Default true.'},
					captureConsole: {type: 'boolean', description: 'Capture the guest console for GET /v1/vms/{cid}/console (a pipe, one or two descriptors while the VM runs). Default true.'},
				},
			},
			response: {201: vmSchema, 400: errorSchema, 500: errorSchema, 503: errorSchema},
		},
	},
	{
		method: 'GET',
		url: '/v1/vms/:cid',
		operationId: 'getVm',
		summary: 'One VM: its state, and its death once dead (kept for the last 1024 deaths).',
		schema: {params: cidParams, response: {200: vmSchema, 404: errorSchema}},
	},
	{
		method: 'POST',
		url: '/v1/vms/:cid/stop',
		operationId: 'stopVm',
		summary: 'Asks the VM to stop, kills it after the timeout, and answers with its death.',
		schema: {
			params: cidParams,
			body: {type: 'object', additionalProperties: false, properties: {timeoutMs: {type: 'integer', minimum: 0, maximum: 2_147_483_647, description: 'Default: the daemon\'s --stop-timeout.'}}},
			response: {200: vmSchema, 404: errorSchema},
		},
	},
	{
		method: 'POST',
		url: '/v1/vms/:cid/kill',
		operationId: 'killVm',
		summary: 'Kills the VM (SIGKILL) and answers with its death.',
		schema: {params: cidParams, body: emptyObject, response: {200: vmSchema, 404: errorSchema}},
	},
	{
		method: 'GET',
		url: '/v1/vms/:cid/console',
		operationId: 'console',
		summary: 'The guest console as a stream, one JSON object per line: {"type":"hello"}, the last lines the daemon kept (up to 50 lines, 16 KiB), then each line as the guest writes it, until the VM\'s console ends. For a VM the daemon remembers as dead: its console tail.',
		schema: {params: cidParams, response: {404: errorSchema, 409: errorSchema, 503: errorSchema}},
		produces: {
			mediaType: 'application/x-ndjson',
			description: 'The stream: one JSON object per line.',
			schema: {
				oneOf: [
					{type: 'object', required: ['type', 'cid'], properties: {type: {const: 'hello'}, cid: {type: 'integer'}}},
					{
						type: 'object',
						required: ['type', 'text', 'tail'],
						properties: {type: {const: 'line'}, text: {type: 'string', description: 'One console line without its newline, decoded as UTF-8, at most 4 KiB (a longer line comes in pieces); the guest\'s own bytes, escape sequences and all.'}, tail: {type: 'boolean', description: 'Written before the request (from the kept tail).'}},
					},
				],
			},
		},
	},
	{
		method: 'GET',
		url: '/v1/events',
		operationId: 'events',
		summary: 'A live stream of events, one JSON object per line: first {"type":"hello"}, then every VM\'s lifecycle events and the supervisor\'s own, until the daemon shuts down.',
		schema: {querystring: {type: 'object', additionalProperties: false, properties: {cid: {type: 'string', pattern: '^[0-9]{1,10}$', description: 'Only this VM\'s events.'}}}, response: {503: errorSchema}},
		produces: {mediaType: 'application/x-ndjson', description: 'The stream: one JSON object per line.', schema: {type: 'object'}},
	},
	{
		method: 'GET',
		url: '/metrics',
		operationId: 'metrics',
		summary: 'Prometheus metrics: VMs by state, suspended VMs, free CIDs, starts, start failures, deaths by reason, start and stop latencies (docs/operations.md).',
		schema: {},
		produces: {mediaType: Registry.PROMETHEUS_CONTENT_TYPE, description: 'The Prometheus text exposition format.', schema: {type: 'string'}},
	},
];
