import {PassThrough} from 'node:stream';
import Fastify, {type FastifyError, type FastifyInstance, type FastifyReply} from 'fastify';
import type {Registry} from 'prom-client';
import {configFromRequest, type Supervisor, type SupervisorEvent, type Vm, type VmDeath} from '../../index.js';
import {keepConsole, type KeptConsole} from './consoles.js';
import {API_ROUTES, MAX_BODY_BYTES, type ApiRoute} from './schemas.js';
import {deadVmJson, errorJson, eventJson, vmJson, type VmJson} from './serialize.js';

/** What the API serves from: the daemon's supervisor and what it remembers. */
export interface DaemonState {
	supervisor: Supervisor;
	/** The last deaths by CID, for `GET /v1/vms/:cid` after the VM let its CID go. */
	deaths: Map<number, VmDeath>;
	/** What the supervisor reported of a previous instance's VMs. */
	reaped: Record<string, unknown>[];
	shuttingDown(): boolean;
	/** Every open stream (events, consoles): ended when the daemon is done. */
	streams: Set<PassThrough>;
	/** The captured consoles of the VMs holding a CID: dropped when the CID is released. */
	consoles: Map<number, KeptConsole>;
	/** The daemon's Prometheus metrics, observing its supervisor. */
	metrics: Registry;
}

/** How many deaths the daemon remembers for `GET /v1/vms/:cid`. */
export const REMEMBERED_DEATHS = 1024;

/** How many streams (events and consoles together) may be open at once. */
export const MAX_STREAMS = 64;

/** How much a stream may hold for a client that does not read: past it, the client is dropped. */
export const MAX_STREAM_BACKLOG_BYTES = 1024 * 1024;

/** The HTTP status for an error the library threw, by its code. */
function statusOf(code: string): number {
	switch (code) {
		case 'INVALID_CONFIG': {
			return 400;
		}

		case 'NO_AVAILABLE_CID':
		case 'SUPERVISOR_SHUT_DOWN': {
			return 503;
		}

		default: {
			return 500;
		}
	}
}

function notFound(reply: FastifyReply, cid: number): FastifyReply {
	return reply.code(404).send({error: {code: 'NOT_FOUND', message: `no VM with CID ${cid}`}});
}

function vmOf(state: DaemonState, vm: Vm): VmJson {
	return vmJson(vm, state.deaths.get(vm.cid));
}

/** A VM's view after a stop or kill: from the death it resolved with. */
function afterDeath(vm: Vm, death: VmDeath | undefined): VmJson {
	return death === undefined ? vmJson(vm, undefined) : deadVmJson(death);
}

/**
 * A stream for one client, counted in `state.streams`, or undefined (and a 503 sent) when too many
 * are open. `write` drops a client that stops reading once its backlog passes the bound: the daemon
 * never holds lines for it without bound.
 */
function openStream(state: DaemonState, reply: FastifyReply): {stream: PassThrough; write: (line: Record<string, unknown>) => void} | undefined {
	if (state.streams.size >= MAX_STREAMS) {
		void reply.code(503).send({error: {code: 'TOO_MANY_STREAMS', message: `${MAX_STREAMS} streams are open already`}});
		return undefined;
	}

	const stream = new PassThrough();
	state.streams.add(stream);
	stream.once('close', () => {
		state.streams.delete(stream);
	});
	return {
		stream,
		write: line => {
			if (stream.writableLength > MAX_STREAM_BACKLOG_BYTES) {
				stream.destroy();
				return;
			}

			stream.write(`${JSON.stringify(line)}\n`);
		},
	};
}

type Handler = (state: DaemonState, request: {params: unknown; query: unknown; body: unknown}, reply: FastifyReply) => unknown;

function cidOf(params: unknown): number {
	return Number((params as {cid: string}).cid);
}

const HANDLERS: Record<ApiRoute['operationId'], Handler> = {
	health(state) {
		return {status: state.shuttingDown() ? 'shutting-down' : 'ok', pid: process.pid, vms: state.supervisor.vms().length, reaped: state.reaped};
	},
	listVms(state) {
		return {vms: state.supervisor.vms().map(vm => vmOf(state, vm))};
	},
	async createVm(state, {body}, reply) {
		const {config, payloadChannel, captureConsole = true} = body as {config: unknown; payloadChannel?: boolean; captureConsole?: boolean};
		const request = configFromRequest(config);
		const vm = await state.supervisor.createVm(captureConsole ? {...request, capture: {...request.capture, console: true}} : request, {payloadChannel});
		if (captureConsole) {
			// Kept from before the start: the console's first lines are in the tail.
			state.consoles.set(vm.cid, keepConsole(vm.console$));
		}

		await vm.start();
		return reply.code(201).send(vmOf(state, vm));
	},
	async getVm(state, {params}, reply) {
		const cid = cidOf(params);
		const vm = state.supervisor.get(cid);
		if (vm !== undefined) {
			return vmOf(state, vm);
		}

		const death = state.deaths.get(cid);
		return death === undefined ? notFound(reply, cid) : deadVmJson(death);
	},
	async stopVm(state, {params, body}, reply) {
		const cid = cidOf(params);
		const vm = state.supervisor.get(cid);
		if (vm === undefined) {
			const death = state.deaths.get(cid);
			return death === undefined ? notFound(reply, cid) : deadVmJson(death);
		}

		return afterDeath(vm, await vm.stop({timeoutMs: (body as {timeoutMs?: number} | undefined)?.timeoutMs}));
	},
	async killVm(state, {params}, reply) {
		const cid = cidOf(params);
		const vm = state.supervisor.get(cid);
		if (vm === undefined) {
			const death = state.deaths.get(cid);
			return death === undefined ? notFound(reply, cid) : deadVmJson(death);
		}

		if (vm.state !== 'Running') {
			return vmOf(state, vm);
		}

		vm.kill();
		return afterDeath(vm, await vm.died);
	},
	async console(state, {params}, reply) {
		const cid = cidOf(params);
		const vm = state.supervisor.get(cid);
		const kept = state.consoles.get(cid);
		const death = state.deaths.get(cid);
		if (vm === undefined && death === undefined) {
			return notFound(reply, cid);
		}

		// A VM the daemon holds without its console captured, or a dead one that had none.
		const tail = kept?.tail() ?? (vm === undefined ? death?.consoleTail : undefined);
		if (tail === undefined) {
			return reply.code(409).send({error: {code: 'CONSOLE_NOT_CAPTURED', message: `VM ${cid}'s console is not captured (created with captureConsole: false)`}});
		}

		const opened = openStream(state, reply);
		if (opened === undefined) {
			return reply;
		}

		const {stream, write} = opened;
		write({type: 'hello', cid});
		for (const text of tail) {
			write({type: 'line', text, tail: true});
		}

		// Taken in the same turn as the tail: no line is missed or sent twice.
		const subscription = kept?.lines$.subscribe({
			next(text) {
				write({type: 'line', text, tail: false});
			},
			complete() {
				stream.end();
			},
		});
		if (subscription === undefined) {
			stream.end();
		} else {
			stream.once('close', () => {
				subscription.unsubscribe();
			});
		}

		return reply.type('application/x-ndjson').send(stream);
	},
	async events(state, {query}, reply) {
		const opened = openStream(state, reply);
		if (opened === undefined) {
			return reply;
		}

		const {stream, write} = opened;
		const only = (query as {cid?: string}).cid;
		const cid = only === undefined ? undefined : Number(only);
		write({type: 'hello', pid: process.pid, vms: state.supervisor.vms().length});
		const subscription = state.supervisor.events$.subscribe({
			next(event: SupervisorEvent) {
				if (cid === undefined || ('cid' in event && event.cid === cid)) {
					write(eventJson(event));
				}
			},
			complete() {
				stream.end();
			},
		});
		stream.once('close', () => {
			subscription.unsubscribe();
		});
		if (state.shuttingDown() && state.supervisor.vms().length === 0) {
			stream.end();
		}

		return reply.type('application/x-ndjson').send(stream);
	},
	async metrics(state, _request, reply) {
		return reply.type(state.metrics.contentType).send(await state.metrics.metrics());
	},
};

/**
 * The daemon's HTTP API (docs/api.md): every route of `API_ROUTES`, with request bodies and
 * parameters checked against their schemas (no coercion, no unknown fields dropped: refused) and
 * every library error answered with its code.
 */
export function buildApi(state: DaemonState, onError: (error: unknown) => void): FastifyInstance {
	const app = Fastify({
		logger: false,
		bodyLimit: MAX_BODY_BYTES,
		// Refuse rather than repair: an unknown field or a string where a number goes is the client's mistake.
		ajv: {customOptions: {removeAdditional: false, coerceTypes: false, useDefaults: false, allErrors: false}},
		return503OnClosing: true,
	});

	app.setErrorHandler((error: FastifyError, _request, reply) => {
		if (error.validation !== undefined || error.statusCode === 400 || error.statusCode === 413 || error.statusCode === 415) {
			return reply.code(error.statusCode ?? 400).send({error: {code: 'BAD_REQUEST', message: error.message}});
		}

		const json = errorJson(error);
		const status = statusOf(json.code);
		if (status === 500) {
			onError(error);
		}

		return reply.code(status).send({error: json});
	});
	app.setNotFoundHandler((request, reply) => reply.code(404).send({error: {code: 'NOT_FOUND', message: `no route ${request.method} ${request.url}`}}));

	for (const route of API_ROUTES) {
		const handler = HANDLERS[route.operationId];
		app.route({
			method: route.method,
			url: route.url,
			schema: route.schema,
			handler: async (request, reply) => handler(state, request, reply) as Promise<unknown>,
		});
	}

	return app;
}
