/**
 * The spawner process's program, as source text run with `node -e`: the same text works from the
 * build, from tsx and under jest, where a program file would have to exist as JavaScript next to
 * whichever module loaded it. It speaks ./protocol.ts over Node's IPC channel.
 *
 * Why a process and not a thread of the host: Node's `spawn` forks, and a fork copies the page
 * tables of the whole forking process and write-protects every page of it (copy-on-write), under the
 * process's memory lock. Forking from the host, even from a worker thread, makes the host's main
 * thread wait on that lock and fault on its own heap after every spawn: the cost grows with the
 * host's memory, times the fleet. This small process forks instead; the host never does, once it
 * started this one.
 *
 * Descriptors are per process, so the VMM's files cannot be handed over as numbers: each one the
 * host opened is opened again here through /proc/HOST/fd/N, which names the file the host holds (not
 * a path that could have changed since the host checked it), with the host's access mode, and closed
 * once the child has its copy.
 *
 * Every descriptor this process inherited without close-on-exec beyond 0-2 (whatever the host
 * itself inherited without the flag, which Node cannot close in the host) is closed at start: only
 * the planned descriptors reach a VMM. Nothing this process opens later is inheritable (libuv opens
 * with O_CLOEXEC, and so is Node's IPC channel).
 *
 * When the host goes (its end of the channel closes, also when it was SIGKILLed), every child still
 * running gets SIGKILL, then this process exits: a VMM whose exec dropped the parent-death signal
 * (file capabilities) still goes with its host. Every child keeps an 'error' listener for as long as
 * it exists: an 'error' with no listener (a failed kill, EMFILE) would end this process.
 *
 * Its own CPU share is small and its children's are their own (docs/performance.md, "Who gets the
 * CPU"): this process leads a session of its own and raises that session's autogroup nice value to
 * the one it is given, higher while it holds a fleet, so that its bulk work (a fleet's forks and
 * reaps) yields to the host's event loop. Every child, VMM or short command, starts a session of
 * its own (setsid), hence an autogroup of its own at the default nice 0: no guest and no crosvm stop
 * inherits the lower weight. And it holds its next spawn back for a moment while the host's main
 * thread waits for a CPU (YIELD below).
 */
export const SPAWNER_SOURCE = String.raw`
'use strict';
const {spawn} = require('node:child_process');
const {chmodSync, closeSync, constants, fstatSync, lstatSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmdirSync, rmSync, unlinkSync, writeFileSync, writeSync} = require('node:fs');
const {join} = require('node:path');

/** The host process, whose descriptors the children get. */
const HOST = Number(process.argv[1]);
/**
 * How this process's session weighs against the host's (spawner.ts, SpawnerWeight): its autogroup
 * nice value is 'nice' while it holds few children, commands and spawns to do, 'fleetNice' from
 * 'fleetAt' of them on, and 'nice' again below half of that. A nice value that is no whole number
 * from 0 to 19 is 0, as the session started (so anything else, '0' say, leaves it as it is); a
 * fleetAt that is no positive number, never a fleet.
 */
const WEIGHT = (() => {
	const niceOf = value => (Number.isInteger(value) && value >= 0 && value <= 19 ? value : 0);
	try {
		const {nice, fleetNice, fleetAt} = JSON.parse(process.argv[2]) ?? {};
		return {nice: niceOf(nice), fleetNice: niceOf(fleetNice), fleetAt: Number.isFinite(fleetAt) && fleetAt > 0 ? fleetAt : Number.POSITIVE_INFINITY};
	} catch {
		return {nice: 0, fleetNice: 0, fleetAt: Number.POSITIVE_INFINITY};
	}
})();
/** Where the host put the IPC channel ('ipc' at stdio index 3). */
const CHANNEL_FD = 3;
if (typeof process.send !== 'function' || !process.connected) {
	// No channel (a thread could not be made, a broken start): nobody could ever reach this process.
	process.exit(70);
}

/** The nice value this process's session was last given (0: as it started), and the one it should have. */
let sessionNice = 0;
let wantedNice = WEIGHT.nice;
let weighingLater = false;

/**
 * Gives this session's autogroup the wanted nice value. Only with autogroups (a kernel built with
 * them, sched_autogroup_enabled, a process outside any cpu cgroup) does the value count; elsewhere
 * the file is missing or unwritable, and nothing competes by session. Without CAP_SYS_ADMIN Linux
 * takes one autogroup write per 100 ms on the whole machine and answers EAGAIN to the others
 * (spawners started together, other programs): this one tries again a few times, 150 ms apart, with
 * whatever value is wanted by then.
 */
function weighSession(attempts) {
	if (wantedNice === sessionNice) {
		return;
	}

	try {
		writeFileSync('/proc/self/autogroup', String(wantedNice));
		sessionNice = wantedNice;
	} catch (error) {
		if (error && error.code === 'EAGAIN' && attempts > 1 && !weighingLater) {
			weighingLater = true;
			setTimeout(() => {
				weighingLater = false;
				weighSession(attempts - 1);
			}, 150).unref();
		}
	}
}

weighSession(10);

/**
 * After each spawn asked for, child or command that comes or goes: a spawner holding a fleet, or
 * asked to start one, weighs less.
 */
function weighLoad() {
	const load = children.size + commands.size + spawnQueue.length - spawnHead;
	const wanted = load >= WEIGHT.fleetAt ? WEIGHT.fleetNice : (load < WEIGHT.fleetAt / 2 ? WEIGHT.nice : wantedNice);
	if (wanted !== wantedNice) {
		wantedNice = wanted;
		weighSession(10);
	}
}

/**
 * Live children by request id: {child, relays: Map<fd, stream>, settling: whether its atExit is
 * still to do, relayEnded and settleNow: what moves it on}.
 */
const children = new Map();
/** Each short command still running, by request id: {child, end}. */
const commands = new Map();
const post = message => {
	if (process.connected) {
		process.send(message, sent);
	}
};

/**
 * A message the host can no longer read (it went between this process's last read and this write)
 * fails later. Without a callback Node makes that an 'error' event, which would end this process
 * with a stack trace on the host's terminal, before 'disconnect' killed the children.
 */
function sent(error) {
	if (error) {
		hostGone();
	}
}

/** The flags of an open descriptor, from the 'flags:' line (octal) of a /proc fdinfo file. */
function flagsOf(fdinfo) {
	const match = /^flags:\s*([0-7]+)$/m.exec(readFileSync(fdinfo, 'utf8'));
	return match === null ? undefined : Number.parseInt(match[1], 8);
}

// Linux's values (asm-generic/fcntl.h); Node's fs.constants has neither.
const O_ACCMODE = 0o3;
const O_CLOEXEC = 0o2000000;

// Whatever this process inherited without close-on-exec beyond 0-2 (the host's own inheritance,
// which Node cannot close there since it is not Node's) is closed here, where nothing uses it: only
// the planned descriptors reach a child. Node's own descriptors are all close-on-exec.
for (const fd of readdirSync('/proc/self/fd').map(Number).filter(fd => fd > 2 && fd !== CHANNEL_FD)) {
	let flags;
	try {
		flags = flagsOf('/proc/self/fdinfo/' + fd);
	} catch (error) {
		// The descriptor readdir itself used, closed by now. Anything else: this process cannot tell
		// what a child would inherit, so it ends (every spawn fails) rather than spawn blind.
		if (error.code === 'ENOENT') {
			continue;
		}

		throw error;
	}

	if (flags === undefined || (flags & O_CLOEXEC) === 0) {
		closeSync(fd);
	}
}

/** The access flags the host opened its descriptor with that matter to whoever reads or writes it. */
const KEPT_FLAGS = O_ACCMODE | constants.O_APPEND | constants.O_DIRECT | constants.O_DSYNC | constants.O_SYNC;

/** Opens the file behind the host's descriptor \`fd\` again, with the host's access mode. */
function reopen(fd) {
	// Still the host's child: were the host gone (its pid free for another process), /proc/HOST would
	// name someone else's descriptors.
	if (process.ppid !== HOST) {
		throw Object.assign(new Error('the host is gone'), {code: 'ESRCH'});
	}

	const flags = flagsOf('/proc/' + HOST + '/fdinfo/' + fd);
	if (flags === undefined) {
		throw Object.assign(new Error('descriptor ' + fd + ' of the host has no flags'), {code: 'EBADF'});
	}

	return openSync('/proc/' + HOST + '/fd/' + fd, flags & KEPT_FLAGS);
}

const exited = child => child.exitCode !== null || child.signalCode !== null;

/**
 * Signals a child's whole process group (every child leads one: see the detached spawns), so that
 * what it started and kept in its group goes too; the child alone when there is no such group.
 */
function signalGroup(child, name) {
	try {
		process.kill(-child.pid, name);
	} catch {
		child.kill(name);
	}
}

/** What went wrong, as text: an error's message, or whatever else was thrown. */
const messageOf = error => String(error && error.message || error);

/** Answers request \`id\` with its failure; \`inDir\`: the spawn's directory could not be made. */
function postFailure(id, error, inDir = false) {
	post({op: 'failed', id, code: error.code, message: messageOf(error), inDir});
}

/** Drops a child once it exited, every relayed pipe of it closed and its atExit is done. */
function forget(id) {
	const entry = children.get(id);
	if (entry !== undefined && entry.relays.size === 0 && !entry.settling && exited(entry.child)) {
		children.delete(id);
		weighLoad();
	}
}

/** Write-only, appending, created fresh (never an existing file or a planted symlink). */
const OUTPUT_FLAGS = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/** Read-only, never through a link, never waiting on a FIFO planted in a file's place. */
const READ_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/**
 * At most maxBytes of a file a child wrote: from its start, or its last bytes (tail). Bounded
 * whatever the child wrote; a missing or unreadable file reads as empty.
 */
function readBack(path, maxBytes, tail) {
	let fd;
	try {
		fd = openSync(path, READ_FLAGS);
	} catch {
		return {text: '', truncated: false};
	}

	try {
		const {size} = fstatSync(fd);
		const length = Math.min(size, maxBytes);
		const buffer = Buffer.alloc(length);
		let read = 0;
		while (read < length) {
			const got = readSync(fd, buffer, read, length - read, (tail ? size - length : 0) + read);
			if (got === 0) {
				break;
			}

			read += got;
		}

		return {text: buffer.subarray(0, read).toString('utf8'), truncated: size > maxBytes};
	} catch {
		return {text: '', truncated: false};
	} finally {
		closeSync(fd);
	}
}

/** Removes a directory tree; returns why it could not, if it could not. */
function removeTree(path) {
	try {
		// What a VMM leaves, a directory of files and sockets, with one call per entry: a death waits
		// for this, and rmSync would also lstat each entry and try rmdir first. An entry is unlinked,
		// a link never followed.
		const stats = lstatSync(path, {throwIfNoEntry: false});
		if (stats === undefined) {
			return undefined;
		}

		if (stats.isDirectory()) {
			for (const entry of readdirSync(path, {withFileTypes: true})) {
				if (!entry.isDirectory()) {
					unlinkSync(join(path, entry.name));
				}
			}

			rmdirSync(path);
			return undefined;
		}
	} catch {
		// A subdirectory, or something that changed meanwhile: the general way below.
	}

	try {
		// rmSync never follows a link inside: it removes the link.
		rmSync(path, {recursive: true, force: true, maxRetries: 2});
		return undefined;
	} catch (error) {
		return messageOf(error);
	}
}

/**
 * The child's atExit, once it exited and its relayed pipes ended, or when the host says so (its
 * grace for a pipe another process keeps open is over): what the host would otherwise read and
 * remove after the exit, in one message, so that a death costs the host no further round trip.
 */
function watchExit(id, entry, atExit) {
	const finish = () => {
		if (!entry.settling) {
			return;
		}

		entry.settling = false;
		const failure = atExit.failure === undefined ? undefined : readBack(atExit.failure.path, atExit.failure.maxBytes, false);
		const stderrTail = readBack(atExit.stderr.path, atExit.stderr.maxBytes, true).text;
		const removeError = atExit.removeDir === undefined ? undefined : removeTree(atExit.removeDir);
		post({op: 'settled', id, failure, stderrTail, removeError});
		forget(id);
	};

	entry.settling = true;
	entry.settleNow = finish;
	entry.relayEnded = () => {
		if (entry.relays.size === 0 && exited(entry.child)) {
			finish();
		}
	};
	entry.child.on('exit', entry.relayEnded);
}

/** Fills a directory just made: mode 0700 whatever the umask, and its marker file. */
function fillDir(directory, markerName, markerText) {
	chmodSync(directory, 0o700);
	const fd = openSync(join(directory, markerName), OUTPUT_FLAGS, 0o600);
	try {
		writeSync(fd, markerText);
	} finally {
		closeSync(fd);
	}
}

function spawnChild({id, file, args, stdio, relay, outputs, env, dir, atExit}) {
	let child;
	if (dir !== undefined) {
		try {
			// Never an existing directory or a planted link: mkdir fails on any name that is taken.
			mkdirSync(dir.path, 0o700);
		} catch (error) {
			postFailure(id, error, true);
			return;
		}
	}

	const fail = error => {
		if (dir !== undefined) {
			removeTree(dir.path);
		}

		postFailure(id, error, dir !== undefined && error.inDir === true);
	};

	// Created here, not on the host's event loop: on a busy disk creating and closing a file takes
	// milliseconds, times a fleet.
	const opened = [];
	try {
		if (dir !== undefined) {
			try {
				fillDir(dir.path, dir.markerName, dir.markerText);
			} catch (error) {
				throw Object.assign(error, {inDir: true});
			}
		}

		for (const [index, entry] of stdio.entries()) {
			if (typeof entry === 'number') {
				const fd = reopen(entry);
				opened.push(fd);
				stdio[index] = fd;
			}
		}

		for (const output of outputs) {
			const fd = openSync(output.path, OUTPUT_FLAGS, 0o600);
			opened.push(fd);
			stdio[output.fd] = fd;
		}

		// Its own session, and so its own autogroup at nice 0 rather than this process's (see above).
		child = spawn(file, args, {stdio, env, detached: true});
	} catch (error) {
		fail(error);
		return;
	} finally {
		// The child has its copies (or there is none): the host keeps no descriptor of these files.
		for (const fd of opened) {
			closeSync(fd);
		}
	}

	if (child.pid === undefined) {
		// libuv failed (ENOENT, EACCES, EMFILE, E2BIG, ...): Node reports it as 'error' on the next tick.
		child.once('error', fail);
		return;
	}

	const relays = new Map();
	const entry = {child, relays, settling: false, relayEnded: () => undefined, settleNow: () => undefined};
	children.set(id, entry);

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
				entry.relayEnded();
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
	// After the exit's own listener: the host learns of the exit before what follows it.
	if (atExit !== undefined) {
		watchExit(id, entry, atExit);
	}
}

function runCommand({id, file, args, timeoutMs, maxOutputBytes, maxStdoutBytes, env}) {
	const keepsStdout = maxStdoutBytes !== undefined;
	let child;
	try {
		// Its own session too: a stop must not wait behind this process's lower weight.
		child = spawn(file, args, {stdio: ['ignore', keepsStdout ? 'pipe' : 'ignore', 'pipe'], env, detached: true});
	} catch (error) {
		post({op: 'ran', id, code: null, signal: null, stderr: '', stdout: undefined, stdoutOverflow: false, timedOut: false, failed: messageOf(error)});
		return;
	}

	let stderr = '';
	const stdout = [];
	let stdoutBytes = 0;
	let stdoutOverflow = false;
	let timedOut = false;
	let done = false;
	const finish = (code, signal, failure) => {
		if (!done) {
			done = true;
			commands.delete(id);
			weighLoad();
			clearTimeout(timer);
			clearTimeout(forceKill);
			const text = keepsStdout ? Buffer.concat(stdout).toString('utf8') : undefined;
			post({op: 'ran', id, code, signal, stderr, stdout: text, stdoutOverflow, timedOut, failed: failure});
		}
	};

	let forceKill;
	// Once: a timeout and then a cancel (its VM died meanwhile) end the command one way. To its whole
	// group: a grandchild holding stderr open would keep the command from ever closing.
	const end = () => {
		if (forceKill === undefined) {
			signalGroup(child, 'SIGTERM');
			forceKill = setTimeout(signalGroup, 1000, child, 'SIGKILL');
		}
	};
	const timer = setTimeout(() => {
		timedOut = true;
		end();
	}, timeoutMs);
	commands.set(id, {child, end});
	weighLoad();
	child.on('error', error => {
		if (child.pid === undefined) {
			finish(null, null, String(error.message));
		}
	});
	child.stderr?.setEncoding('utf8');
	child.stderr?.on('data', text => {
		// Its end: where a command says what went wrong.
		stderr = (stderr + text).slice(-maxOutputBytes);
	});
	// Bounded before it is kept: a command printing more than asked is ended, and keeps nothing.
	child.stdout?.on('data', chunk => {
		if (stdoutOverflow) {
			return;
		}

		stdoutBytes += chunk.length;
		if (stdoutBytes > maxStdoutBytes) {
			stdoutOverflow = true;
			stdout.length = 0;
			// Read no more of it: a command that ignores SIGTERM gets SIGPIPE rather than a reader.
			child.stdout.destroy();
			end();
			return;
		}

		stdout.push(chunk);
	});
	child.on('close', (code, signal) => finish(code, signal));
}

/**
 * The VM's private directory, made here rather than in the host: each step is a system call that
 * takes milliseconds on a busy disk, and the host's thread pool would queue them behind everything
 * else a fleet start does.
 */
function makeTempDir({id, prefix, markerName, markerText}) {
	let directory;
	try {
		directory = mkdtempSync(prefix);
		fillDir(directory, markerName, markerText);
		post({op: 'made', id, path: directory});
	} catch (error) {
		if (directory !== undefined) {
			removeTree(directory);
		}

		postFailure(id, error);
	}
}

/** The host is gone (its end of the channel closed, whatever killed it): nothing it started may stay. */
function hostGone() {
	for (const {child} of [...children.values(), ...commands.values()]) {
		signalGroup(child, 'SIGKILL');
	}

	process.exit(0);
}

process.on('disconnect', hostGone);

/**
 * Stepping aside for a host that waits for a CPU (spawner.ts, spawnerYield): before each spawn the
 * host main thread's schedstat says how long it waited for a CPU since the last look. Without the
 * file (a kernel without schedstats) or the settings, nothing waits. Short commands never wait: a
 * fleet's stop commands held back made its stop slower for no shorter delay.
 */
const YIELD = (() => {
	try {
		const settings = JSON.parse(process.argv[3]);
		const {waitMs, pauseMs, maxPauseMs, recentMs} = settings;
		if (![waitMs, pauseMs, maxPauseMs, recentMs].every(value => Number.isFinite(value) && value >= 0)) {
			return undefined;
		}

		return {fd: openSync(settings.schedstat, 'r'), waitMs, pauseMs, maxPauseMs, recentMs};
	} catch {
		return undefined;
	}
})();
const schedstat = Buffer.alloc(128);
let lookedAt = -Infinity;
let hostWaitedMs = 0;
/** When the pauses in a row began; undefined when the last look let a spawn go. */
let pausingSince;

/** The host main thread's time waiting for a CPU so far, in milliseconds (the file says "run wait slices" in nanoseconds). */
function hostWaitMs() {
	const length = readSync(YIELD.fd, schedstat, 0, schedstat.length, 0);
	return Number(schedstat.toString('latin1', 0, length).split(' ')[1]) / 1e6;
}

/** Whether the next spawn waits: the host waited long enough since a recent last look, and the pauses in a row have not lasted maxPauseMs yet. */
function hostWaits() {
	let waitedMs;
	try {
		waitedMs = hostWaitMs();
	} catch {
		return false;
	}

	if (!Number.isFinite(waitedMs)) {
		return false;
	}

	const now = performance.now();
	const recent = now - lookedAt < YIELD.recentMs;
	const waited = waitedMs - hostWaitedMs;
	lookedAt = now;
	hostWaitedMs = waitedMs;
	if (recent && waited >= YIELD.waitMs && (pausingSince === undefined || now - pausingSince < YIELD.maxPauseMs)) {
		pausingSince ??= now;
		return true;
	}

	pausingSince = undefined;
	return false;
}

/**
 * Spawns start one per turn of this process's loop, in order, each after the host's waiting was
 * looked at (YIELD above): between two of them the loop reaps, relays and reads the host's next
 * messages. Short commands start as they come: one per turn, a fleet's stop took 1.02-1.26x the bare
 * one at 1,000 VMs instead of 0.82x.
 */
const spawnQueue = [];
let spawnHead = 0;
let pumping = false;

function queueSpawn(message) {
	spawnQueue.push(message);
	weighLoad();
	if (!pumping) {
		pumping = true;
		setImmediate(pumpSpawns);
	}
}

function pumpSpawns() {
	if (spawnHead === spawnQueue.length) {
		spawnQueue.length = 0;
		spawnHead = 0;
		pumping = false;
		return;
	}

	if (YIELD !== undefined && hostWaits()) {
		setTimeout(pumpSpawns, YIELD.pauseMs);
		return;
	}

	const message = spawnQueue[spawnHead];
	spawnQueue[spawnHead++] = undefined;
	spawnChild(message);
	// Its one place: a child taken from the queue, or a spawn that failed and left no child.
	weighLoad();
	setImmediate(pumpSpawns);
}

process.on('message', message => {
	switch (message.op) {
		case 'spawn': {
			queueSpawn(message);
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

		case 'settle': {
			const entry = children.get(message.id);
			if (entry !== undefined && exited(entry.child)) {
				entry.settleNow();
			}

			break;
		}

		case 'cancel': {
			commands.get(message.id)?.end();
			break;
		}

		case 'more': {
			children.get(message.id)?.relays.get(message.fd)?.resume();
			break;
		}

		case 'mkdtemp': {
			makeTempDir(message);
			break;
		}

		case 'rm': {
			post({op: 'removed', id: message.id, error: removeTree(message.path)});
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

// Everything is in place: the host may send.
post({op: 'ready'});
`;
