#!/usr/bin/env node
/**
 * The `vmwarden` command (docs/cli.md): `run` a VM in the foreground, `serve` a fleet on a unix
 * socket, and the clients of that socket.
 */
import {main} from './program.js';

// A closed terminal or a reader gone from a pipe (EIO, EPIPE) must not crash the command while it
// still has a VM to stop and clean up: what can no longer be printed is dropped.
for (const stream of [process.stdout, process.stderr]) {
	stream.on('error', () => undefined);
}

process.exitCode = await main(process.argv);
