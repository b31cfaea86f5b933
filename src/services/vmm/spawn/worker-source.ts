/**
 * The spawner thread's program, as source text run with `new Worker(source, {eval: true})`: the
 * same text works from the build, from tsx and under jest, where a worker file would have to exist
 * as JavaScript next to whichever module loaded it. It speaks ./protocol.ts.
 *
 * Node's `spawn` forks and then blocks the calling thread until the child has exec'd (libuv waits
 * on a close-on-exec pipe), so this thread takes that wait instead of the host's event loop. Every
 * child keeps an 'error' listener for as long as it exists: an 'error' with no listener (a failed
 * spawn, a kill that fails) would crash the host.
 *
 * The parent-death signal that setpriv sets follows the thread that forked the child: this thread
 * must outlive every child it spawned, which the main side guarantees by ending it only when idle.
 */
export const SPAWNER_SOURCE = String.raw`
'use strict';
const {parentPort} = require('node:worker_threads');
const {spawn} = require('node:child_process');
const {closeSync, constants, openSync} = require('node:fs');

/** Live children by request id: {child, relays: Map<fd, stream>}. */
const children = new Map();
/** How to end each short command still running, by request id. */
const commands = new Map();
const post = message => parentPort.postMessage(message);

/** Drops a child once it exited and every relayed pipe of it closed. */
function forget(id) {
	const entry = children.get(id);
	if (entry !== undefined && entry.relays.size === 0 && (entry.child.exitCode !== null || entry.child.signalCode !== null)) {
		children.delete(id);
	}
}

/** Write-only, appending, created fresh (never an existing file or a planted symlink). */
const OUTPUT_FLAGS = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

function spawnChild({id, file, args, stdio, relay, outputs, env}) {
	let child;
	// Created here, not on the host's event loop: on a busy disk creating and closing a file takes
	// milliseconds, times a fleet.
	const opened = [];
	try {
		for (const output of outputs) {
			const fd = openSync(output.path, OUTPUT_FLAGS, 0o600);
			opened.push(fd);
			stdio[output.fd] = fd;
		}

		child = spawn(file, args, {stdio, env});
	} catch (error) {
		post({op: 'failed', id, code: error.code, message: String(error && error.message || error)});
		return;
	} finally {
		// The child has its copies (or there is none): the host keeps no descriptor of these files.
		for (const fd of opened) {
			closeSync(fd);
		}
	}

	if (child.pid === undefined) {
		// libuv failed (ENOENT, EACCES, EMFILE, E2BIG, ...): Node reports it as 'error' on the next tick.
		child.once('error', error => post({op: 'failed', id, code: error.code, message: String(error.message)}));
		return;
	}

	const relays = new Map();
	children.set(id, {child, relays});
	child.on('error', error => post({op: 'error', id, message: String(error.message)}));
	post({op: 'spawned', id, pid: child.pid});
	for (const fd of relay) {
		const stream = child.stdio[fd];
		if (!stream) {
			post({op: 'end', id, fd});
			continue;
		}

		relays.set(fd, stream);
		let ended = false;
		const end = () => {
			if (!ended) {
				ended = true;
				relays.delete(fd);
				post({op: 'end', id, fd});
				forget(id);
			}
		};

		// One chunk in flight per pipe: a flooding guest waits for the host to read, never the heap.
		stream.on('data', chunk => {
			stream.pause();
			post({op: 'data', id, fd, chunk: new Uint8Array(chunk)});
		});
		stream.on('end', end);
		stream.on('close', end);
		stream.on('error', end);
	}

	child.on('exit', (code, signal) => {
		post({op: 'exit', id, code, signal});
		forget(id);
	});
}

function runCommand({id, file, args, timeoutMs, maxOutputBytes, env}) {
	let child;
	try {
		child = spawn(file, args, {stdio: ['ignore', 'ignore', 'pipe'], env});
	} catch (error) {
		post({op: 'ran', id, code: null, signal: null, stderr: '', timedOut: false, failed: String(error && error.message || error)});
		return;
	}

	let stderr = '';
	let timedOut = false;
	let done = false;
	const finish = (code, signal, failure) => {
		if (!done) {
			done = true;
			commands.delete(id);
			clearTimeout(timer);
			clearTimeout(forceKill);
			post({op: 'ran', id, code, signal, stderr, timedOut, failed: failure});
		}
	};

	let forceKill;
	const end = () => {
		child.kill('SIGTERM');
		forceKill = setTimeout(() => child.kill('SIGKILL'), 1000);
	};
	const timer = setTimeout(() => {
		timedOut = true;
		end();
	}, timeoutMs);
	commands.set(id, end);
	child.on('error', error => {
		if (child.pid === undefined) {
			finish(null, null, String(error.message));
		}
	});
	child.stderr?.setEncoding('utf8');
	child.stderr?.on('data', text => {
		stderr = (stderr + text).slice(0, maxOutputBytes);
	});
	child.on('close', (code, signal) => finish(code, signal));
}

parentPort.on('message', message => {
	switch (message.op) {
		case 'spawn': {
			spawnChild(message);
			break;
		}

		case 'run': {
			runCommand(message);
			break;
		}

		case 'kill': {
			children.get(message.id)?.child.kill(message.signal);
			break;
		}

		case 'cancel': {
			commands.get(message.id)?.();
			break;
		}

		case 'more': {
			children.get(message.id)?.relays.get(message.fd)?.resume();
			break;
		}

		case 'close': {
			// Its 'close' event posts the end and forgets the child once it exited.
			children.get(message.id)?.relays.get(message.fd)?.destroy();
			break;
		}

		default:
	}
});
`;
