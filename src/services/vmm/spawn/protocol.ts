/**
 * The messages between the host and the spawner process (./spawner-source.ts). Plain
 * data only: they cross Node's IPC channel (advanced serialization).
 */

/** A child's stdio entry: inherit an fd of this process, a pipe the spawner relays, or nothing. */
export type StdioEntry = number | 'pipe' | 'ignore';

/** A file the child writes into at child fd `fd`. */
export interface OutputFile {
	fd: number;
	path: string;
}

export type ToSpawner =
	/**
	 * Spawn a long-lived child. `relay` lists the stdio indexes whose pipes are relayed back;
	 * `outputs` are files the spawner creates (write-only, appending, new, 0600) as those stdio
	 * entries and closes again once the child has them.
	 */
	| {op: 'spawn'; id: number; file: string; args: string[]; stdio: StdioEntry[]; relay: number[]; outputs: OutputFile[]; env: NodeJS.ProcessEnv}
	/** Run a short command to its end, keeping at most `maxOutputBytes` of its stderr. */
	| {op: 'run'; id: number; file: string; args: string[]; timeoutMs: number; maxOutputBytes: number; env: NodeJS.ProcessEnv}
	| {op: 'kill'; id: number; signal: NodeJS.Signals}
	/** End a short command early (SIGTERM, then SIGKILL a second later): its caller gave up. */
	| {op: 'cancel'; id: number}
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
	| {op: 'failed'; id: number; code: string | undefined; message: string}
	| {op: 'data'; id: number; fd: number; chunk: Uint8Array}
	| {op: 'end'; id: number; fd: number}
	| {op: 'exit'; id: number; code: number | null; signal: NodeJS.Signals | null}
	/** A child's 'error' after it was spawned (a failed kill): logged, the exit still comes. */
	| {op: 'error'; id: number; message: string}
	| {op: 'made'; id: number; path: string}
	/** `error` says why the directory could not be removed. */
	| {op: 'removed'; id: number; error: string | undefined}
	/** A command ended; `failed` says why it could not even start. */
	| {op: 'ran'; id: number; code: number | null; signal: NodeJS.Signals | null; stderr: string; timedOut: boolean; failed: string | undefined};
