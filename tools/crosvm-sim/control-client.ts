import {connect} from 'node:net';
import {CONTROL_OK, CONTROL_REQUESTS, encodeControlMessage, type ControlCommand} from './control-protocol.js';
import {osErrorText} from './descriptors.js';
import {ConfigurationError} from './failures.js';

/**
 * `crosvm stop|suspend|resume SOCKET`: sends one request and resolves when the VM answers "Ok".
 * Rejects with `ConfigurationError` (exit 1) when it cannot connect or gets another answer. Like
 * crosvm, it waits as long as the VM takes to answer.
 */
export function sendControlRequest(command: ControlCommand, socketPath: string): Promise<void> {
	return new Promise((resolve, reject) => {
		const socket = connect(socketPath);
		let answer = '';
		let settled = false;
		const settle = (error?: Error) => {
			if (!settled) {
				settled = true;
				socket.destroy();
				if (error === undefined) {
					resolve();
				} else {
					reject(error);
				}
			}
		};

		socket.setEncoding('utf8');
		socket.on('connect', () => {
			socket.write(encodeControlMessage(CONTROL_REQUESTS[command]));
		});
		socket.on('error', error => {
			settle(new ConfigurationError(`failed to connect to socket at '${socketPath}': ${osErrorText(error)}`));
		});
		socket.on('data', (chunk: string) => {
			answer += chunk;
		});
		socket.on('close', () => {
			const line = answer.split('\n')[0] ?? '';
			let response: unknown;
			try {
				response = line === '' ? undefined : JSON.parse(line);
			} catch {
				response = line;
			}

			settle(response === CONTROL_OK ? undefined : new ConfigurationError(response === undefined ? 'no response to the request' : `unexpected response: ${line}`));
		});
	});
}
