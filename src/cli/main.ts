#!/usr/bin/env node
/**
 * The `vmwarden` command (docs/cli.md): `run` a VM in the foreground, `serve` a fleet on a unix
 * socket, and the clients of that socket.
 */
import {main} from './program.js';

process.exitCode = await main(process.argv);
