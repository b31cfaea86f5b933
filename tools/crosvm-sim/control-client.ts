import {connect} from 'node:net';
import type {SimBuild} from './build.js';
import type {BalloonRequest} from './command-line.js';
import {BALLOON_STATS_REQUEST, balloonAdjustRequest, CONTROL_OK, CONTROL_REQUESTS, encodeControlMessage, type ControlCommand} from './control-protocol.js';
import {osErrorText} from './descriptors.js';
import {ConfigurationError} from './failures.js';

/** One request, one response: the response's first line, parsed (undefined when there was none). */
function exchange(request: unknown, socketPath: string): Promise<{response: unknown; line: string}> {
	return new Promise((resolve, reject) => {
		const socket = connect(socketPath);
		let answer = '';
		let settled = false;
		socket.setEncoding('utf8');
		socket.on('connect', () => {
			socket.write(encodeControlMessage(request));
		});
		socket.on('error', error => {
			settled = true;
			socket.destroy();
			reject(new ConfigurationError(`failed to connect to socket at '${socketPath}': ${osErrorText(error)}`));
		});
		socket.on('data', (chunk: string) => {
			answer += chunk;
		});
		socket.on('close', () => {
			if (settled) {
				return;
			}

			settled = true;
			const line = answer.split('\n')[0] ?? '';
			let response: unknown;
			try {
				response = line === '' ? undefined : JSON.parse(line);
			} catch {
				response = line;
			}

			resolve({response, line});
		});
	});
}

/**
 * `crosvm stop|suspend|resume SOCKET`: sends one request and resolves when the VM answers "Ok".
 * Rejects with `ConfigurationError` (exit 1) when it cannot connect or gets another answer. Like
 * crosvm, it waits as long as the VM takes to answer.
 */
export async function sendControlRequest(command: ControlCommand, socketPath: string): Promise<void> {
	await expectOk(CONTROL_REQUESTS[command], socketPath);
}

async function expectOk(request: unknown, socketPath: string): Promise<void> {
	const {response, line} = await exchange(request, socketPath);
	if (response !== CONTROL_OK) {
		throw new ConfigurationError(response === undefined ? 'no response to the request' : `unexpected response: ${line}`);
	}
}

/**
 * `crosvm balloon SIZE SOCKET` (answered "Ok", as `stop`) and `crosvm balloon_stats SOCKET`, which
 * prints the response as serde_json's pretty JSON on stdout whatever it is, and fails (exit 1)
 * unless it is `BalloonStats` (`balloon_stats` in src/main.rs at f1e797a68 and efdcf90a4).
 */
export async function sendBalloonRequest(request: BalloonRequest, socketPath: string, build: SimBuild): Promise<void> {
	if (request.kind === 'adjust') {
		await expectOk(balloonAdjustRequest(request.numBytes, build.dialect === 'current' ? request.wait ?? false : undefined), socketPath);
		return;
	}

	const {response} = await exchange(BALLOON_STATS_REQUEST, socketPath);
	process.stdout.write(`${JSON.stringify(response ?? null, null, 2)}\n`);
	if (typeof response !== 'object' || response === null || !('BalloonStats' in response)) {
		throw new ConfigurationError('balloon_stats subcommand failed');
	}
}
