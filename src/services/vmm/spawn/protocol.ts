/**
 * The messages between the host and the spawner process (./spawner-source.ts). Plain
 * data only: they cross Node's IPC channel (advanced serialization).
 */

/** A child's whole environment: the spawner adds nothing (its own is empty). */
export type ChildEnvironment = Readonly<Record<string, string>>;

/** A child's stdio entry: inherit an fd of this process, a pipe the spawner relays, or nothing. */
export type StdioEntry = number | 'pipe' | 'ignore';

/** A file the child writes into at child fd `fd`. */
export interface OutputFile {
	fd: number;
	path: string;
}

/** A directory the spawner makes before anything else of a spawn: mode 0700, holding a new file `markerName` with `markerText`. */
export interface DirectoryToMake {
	path: string;
	markerName: string;
	markerText: string;
}

/**
 * What the spawner does once the child exited and every relayed pipe ended (or when the host says
 * `settle`, another process keeping a pipe open): reads the start of `failure` and the tail of
 * `stderr` (bounded, never through a link), then removes `removeDir` if given, and says so in one
 * `settled` message.
 */
export interface AtExit {
	failure: {path: string; maxBytes: number} | undefined;
	stderr: {path: string; maxBytes: number};
	removeDir: string | undefined;
}

/** A file the spawner read back: its text, and whether it held more than was read. */
export interface ReadBack {
	text: string;
	truncated: boolean;
}

export type ToSpawner =
	/**
	 * Spawn a long-lived child. `relay` lists the stdio indexes whose pipes are relayed back;
	 * `outputs` are files the spawner creates (write-only, appending, new, 0600) as those stdio
	 * entries and closes again once the child has them; `dir` is made first (and removed again when
	 * the spawn fails), `atExit` is done once the child is gone.
	 */
	| {op: 'spawn'; id: number; file: string; args: string[]; stdio: StdioEntry[]; relay: number[]; outputs: OutputFile[]; env: ChildEnvironment; dir: DirectoryToMake | undefined; atExit: AtExit | undefined}
	/**
	 * Run a short command to its end, keeping at most `maxOutputBytes` of its stderr and, when
	 * `maxStdoutBytes` is set, its stdout: one byte more ends the command (SIGTERM, then SIGKILL).
	 */
	| {op: 'run'; id: number; file: string; args: string[]; timeoutMs: number; maxOutputBytes: number; maxStdoutBytes: number | undefined; env: ChildEnvironment}
	| {op: 'kill'; id: number; signal: NodeJS.Signals}
	/** End a short command early (SIGTERM, then SIGKILL a second later): its caller gave up. */
	| {op: 'cancel'; id: number}
	/** Do the child's `atExit` now, whatever relayed pipe is still open (the host's grace is over). */
	| {op: 'settle'; id: number}
	/** The main thread took the last chunk of a relayed pipe: send the next one. */
	| {op: 'more'; id: number; fd: number}
	/** The host is done with a relayed pipe: close the spawner's end. */
	| {op: 'close'; id: number; fd: number}
	/** Make a directory `prefix` + six random characters, mode 0700, holding a new file `markerName` with `markerText`. */
	| {op: 'mkdtemp'; id: number; prefix: string; markerName: string; markerText: string}
	/** Remove a directory and everything in it (never following a link inside). */
	| {op: 'rm'; id: number; path: string};

export type FromSpawner =
	/** The spawner started and listens; until it says so within the host's bound, it is not trusted. */
	| {op: 'ready'}
	| {op: 'spawned'; id: number; pid: number}
	/** `inDir`: the directory of the spawn could not be made (nothing was spawned). */
	| {op: 'failed'; id: number; code: string | undefined; message: string; inDir?: boolean}
	| {op: 'data'; id: number; fd: number; chunk: Uint8Array}
	| {op: 'end'; id: number; fd: number}
	| {op: 'exit'; id: number; code: number | null; signal: NodeJS.Signals | null}
	/** The spawn's `atExit` is done; `removeError` says why its directory could not be removed. */
	| {op: 'settled'; id: number; failure: ReadBack | undefined; stderrTail: string; removeError: string | undefined}
	/** A child's 'error' after it was spawned (a failed kill): logged, the exit still comes. */
	| {op: 'error'; id: number; message: string}
	| {op: 'made'; id: number; path: string}
	/** `error` says why the directory could not be removed. */
	| {op: 'removed'; id: number; error: string | undefined}
	/**
	 * A command ended; `failed` says why it could not even start. `stdout` when it was asked for
	 * (empty once it printed more than its bound: `stdoutOverflow`).
	 */
	| {op: 'ran'; id: number; code: number | null; signal: NodeJS.Signals | null; stderr: string; stdout: string | undefined; stdoutOverflow: boolean; timedOut: boolean; failed: string | undefined};
