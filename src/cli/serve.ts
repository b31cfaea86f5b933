import {chmodSync, lchownSync, lstatSync, unlinkSync} from 'node:fs';
import {createMetrics, createSupervisor, DEFAULT_CID_RANGE, type CidRange, type FilePolicy, type Supervisor, type VmDeath} from '../index.js';
import {buildApi, REMEMBERED_DEATHS, type DaemonState} from './api/server.js';
import {eventJson} from './api/serialize.js';
import {EXIT_STATUS} from './exit-status.js';
import {stderrLogger} from './logger.js';
import {vmmChoice, type VmmOptions} from './options.js';
import {reportError} from './output.js';
import {claimSocketPath, resolveGroup} from './socket.js';

export interface ServeOptions extends VmmOptions {
	socket: string;
	/** Let this group use the socket too (mode 0660 instead of 0600). */
	socketGroup?: string;
	stateDir?: string;
	/** The file policy's allowed directories. Default: none, any directory. */
	allowDir: string[];
	/** Let configs create their console and log outputs. Default false. */
	createOutputs: boolean;
	stopTimeout?: number;
	bootTimeout?: number;
	cidFirst?: number;
	cidLast?: number;
	verbose: boolean;
}

/** The socket file, so that only the one this daemon made is removed at exit. */
interface SocketIdentity {
	dev: number;
	ino: number;
}

function removeOwnSocket(path: string, identity: SocketIdentity | undefined): void {
	try {
		const stats = lstatSync(path);
		if (identity !== undefined && stats.dev === identity.dev && stats.ino === identity.ino) {
			unlinkSync(path);
		}
	} catch {
		// Already gone.
	}
}

/**
 * `vmwarden serve`: the supervisor as a daemon with its API on a unix socket. The socket is
 * created owner-only (0600, or 0660 for `--socket-group`); a live one is never taken over, a stale
 * one is replaced. SIGTERM or SIGINT shuts the fleet down gracefully (a second one kills every VM)
 * and the daemon exits once every VM is dead. Resolves with the exit status.
 */
export async function serveCommand(options: ServeOptions): Promise<number> {
	const logger = stderrLogger(options.verbose ? 'debug' : 'info');
	const filePolicy: FilePolicy = {createOutputs: options.createOutputs, ...(options.allowDir.length > 0 ? {allowedDirectories: options.allowDir} : {})};
	let supervisor: Supervisor;
	const cidRange: CidRange | undefined = options.cidFirst === undefined && options.cidLast === undefined ? undefined : {first: options.cidFirst ?? DEFAULT_CID_RANGE.first, last: options.cidLast ?? DEFAULT_CID_RANGE.last};
	try {
		const gid = options.socketGroup === undefined ? undefined : resolveGroup(options.socketGroup);
		await claimSocketPath(options.socket);
		supervisor = createSupervisor({
			...vmmChoice(options),
			logger,
			stateDir: options.stateDir,
			filePolicy,
			stopTimeoutMs: options.stopTimeout,
			bootHangupTimeoutMs: options.bootTimeout,
			...(cidRange === undefined ? {} : {cidRange}),
		});
		return await serve(supervisor, {...options, cidRange}, gid, logger);
	} catch (error) {
		return reportError(error, {json: false});
	}
}

async function serve(supervisor: Supervisor, options: ServeOptions & {cidRange: CidRange | undefined}, gid: number | undefined, logger: ReturnType<typeof stderrLogger>): Promise<number> {
	let shuttingDown = false;
	const metrics = createMetrics();
	// Subscribed before any VM exists: every VM is counted from its creation.
	const stopObserving = metrics.observeSupervisor(supervisor, {cidRange: options.cidRange});
	const state: DaemonState = {supervisor, deaths: new Map<number, VmDeath>(), reaped: [], shuttingDown: () => shuttingDown, streams: new Set(), consoles: new Map(), metrics: metrics.registry};
	supervisor.events$.subscribe(event => {
		if (event.type === 'died') {
			state.deaths.delete(event.cid);
			state.deaths.set(event.cid, event.death);
			if (state.deaths.size > REMEMBERED_DEATHS) {
				state.deaths.delete(state.deaths.keys().next().value!);
			}
		} else if (event.type === 'supervisor.cid.released') {
			state.consoles.get(event.cid)?.dispose();
			state.consoles.delete(event.cid);
		} else if (event.type === 'supervisor.staleVm.reaped') {
			const {type: _type, initiator: _initiator, cause: _cause, ...report} = eventJson(event);
			state.reaped.push(report);
			logger.info(`Reaped CID ${event.cid} left by a previous daemon: ${event.outcome} (${event.reason})`);
		}
	});

	const app = buildApi(state, error => {
		logger.error(`API: ${String(error)}`);
	});
	let identity: SocketIdentity | undefined;
	// The umask makes the socket owner-only as it is created: there is no window where others could
	// connect. The group's access comes after, once the socket has that group.
	const umask = process.umask(0o177);
	try {
		await app.listen({path: options.socket});
	} catch (error) {
		await supervisor.shutdown();
		throw error;
	} finally {
		process.umask(umask);
	}

	try {
		if (gid !== undefined) {
			// Safe by path: claimSocketPath made sure nobody else can swap the name for a link.
			lchownSync(options.socket, -1, gid);
			chmodSync(options.socket, 0o660);
		}

		const stats = lstatSync(options.socket);
		identity = {dev: stats.dev, ino: stats.ino};
	} catch (error) {
		await app.close();
		removeOwnSocket(options.socket, identity);
		await supervisor.shutdown();
		throw error;
	}

	logger.info(`Serving on ${options.socket} (pid ${process.pid})`);
	const status = await untilDone(supervisor, logger, () => {
		shuttingDown = true;
	});
	for (const kept of state.consoles.values()) {
		kept.dispose();
	}

	for (const stream of state.streams) {
		stream.end();
	}

	stopObserving();

	await app.close();
	removeOwnSocket(options.socket, identity);
	logger.info('Every VM is dead: exiting');
	return status;
}

/**
 * Resolves once the daemon is done: after SIGTERM or SIGINT, when the supervisor has shut the fleet
 * down (ok; a second signal kills every VM); or when the supervisor ended by itself, which only a
 * bug does (failed: its VMs were stopped with it).
 */
async function untilDone(supervisor: Supervisor, logger: ReturnType<typeof stderrLogger>, onShutdown: () => void): Promise<number> {
	return new Promise(resolve => {
		let signals = 0;
		const finish = (status: number) => {
			process.off('SIGTERM', onSignal);
			process.off('SIGINT', onSignal);
			resolve(status);
		};

		const onSignal = (signal: NodeJS.Signals) => {
			signals += 1;
			if (signals > 1) {
				logger.warn(`${signal} again: killing every VM`);
				for (const vm of supervisor.vms()) {
					vm.kill();
				}

				return;
			}

			onShutdown();
			logger.info(`${signal}: stopping ${supervisor.vms().length} VM(s)`);
			void supervisor.shutdown().then(() => {
				finish(EXIT_STATUS.ok);
			});
		};

		process.on('SIGTERM', onSignal);
		process.on('SIGINT', onSignal);
		// The event stream completes only when the supervisor is finished: by a shutdown, or by failing.
		supervisor.events$.subscribe({
			complete() {
				if (signals === 0) {
					logger.error('The supervisor ended without a shutdown: exiting');
					finish(EXIT_STATUS.failed);
				}
			},
		});
	});
}
