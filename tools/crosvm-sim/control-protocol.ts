/**
 * The control socket's wire format in the simulator: one JSON value per line over a Unix stream
 * socket (Node has no SOCK_SEQPACKET). Requests and responses are spelled as crosvm's serde spells
 * its `VmRequest` and `VmResponse`.
 */
export const CONTROL_REQUESTS = {
	stop: 'Exit',
	suspend: 'SuspendVcpus',
	resume: 'ResumeVcpus',
} as const;

export type ControlCommand = keyof typeof CONTROL_REQUESTS;

/** The answer to every request the VM carried out. */
export const CONTROL_OK = 'Ok';

export function encodeControlMessage(message: unknown): string {
	return `${JSON.stringify(message)}\n`;
}
