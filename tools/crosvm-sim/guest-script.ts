import type {PayloadReport} from 'vmwarden/payload-protocol';

/** The first line of every guest script; anything else is not a kernel the simulator can boot. */
export const GUEST_SCRIPT_HEADER = '#!crosvm-sim-guest';

/** Which device a text directive writes to. */
export type GuestOutput = 'console' | 'kmsg' | 'log';

/** One step of a guest, in order. */
export type GuestDirective =
	| {kind: 'write'; output: GuestOutput; text: string}
	| {kind: 'payload'; report: PayloadReport}
	| {kind: 'fail'; text: string}
	| {kind: 'fail-flood'; bytes: number}
	| {kind: 'console-flood'; bytes: number}
	| {kind: 'sleep'; ms: number}
	| {kind: 'ignore-sigterm'}
	| {kind: 'ignore-stop'}
	| {kind: 'spawn-holder'; ms: number};

/** How the guest ends. */
export type FinalAction =
	| {kind: 'poweroff' | 'reboot' | 'crash' | 'panic' | 'watchdog' | 'hang' | 'abort'}
	| {kind: 'signal'; signal: NodeJS.Signals}
	| {kind: 'exit'; code: number};

export interface GuestScript {
	directives: GuestDirective[];
	final: FinalAction;
}

/** A script the simulator cannot boot; `line` is 1-based (the header is line 1). */
export class GuestScriptError extends Error {
	readonly line: number;

	constructor(line: number, message: string) {
		super(`line ${line}: ${message}`);
		this.line = line;
	}
}

/**
 * Signals a guest may die by: those whose default action ends the process and that Node leaves at
 * their default (Node ignores SIGPIPE and uses SIGUSR1 for its inspector).
 */
export const GUEST_SIGNALS: readonly NodeJS.Signals[] = [
	'SIGHUP', 'SIGINT', 'SIGQUIT', 'SIGILL', 'SIGTRAP', 'SIGABRT', 'SIGBUS', 'SIGFPE', 'SIGKILL',
	'SIGUSR2', 'SIGSEGV', 'SIGALRM', 'SIGTERM', 'SIGXCPU', 'SIGXFSZ', 'SIGSYS',
];

const SIMPLE_FINALS = new Set(['poweroff', 'reboot', 'crash', 'panic', 'watchdog', 'hang', 'abort']);

/** The longest single timer Node supports; longer sleeps are not needed by any guest. */
const MAX_MS = 2_147_483_647;

const MAX_FLOOD_BYTES = 1 << 30;

const PAYLOAD_CODE = /^-?\d{1,10}$/;

function count(line: number, directive: string, text: string, max: number): number {
	if (!/^\d+$/.test(text) || Number(text) > max) {
		throw new GuestScriptError(line, `${directive} takes a whole number from 0 to ${max}, not "${text}"`);
	}

	return Number(text);
}

function payloadCode(line: number, text: string | undefined, what: string): number {
	if (text === undefined || !PAYLOAD_CODE.test(text) || Math.abs(Number(text)) > 2 ** 31) {
		throw new GuestScriptError(line, `payload ${what} takes an integer code, not "${text ?? ''}"`);
	}

	return Number(text);
}

function payload(line: number, argument: string): PayloadReport {
	const [state, code, ...words] = argument.split(' ');
	switch (state) {
		case 'started':
		case 'ready': {
			if (code !== undefined) {
				throw new GuestScriptError(line, `payload ${state} takes nothing after it`);
			}

			return {type: state};
		}

		case 'finished': {
			if (words.length > 0) {
				throw new GuestScriptError(line, 'payload finished takes one exit code');
			}

			return {type: 'finished', exitCode: payloadCode(line, code, 'finished')};
		}

		case 'error': {
			return {type: 'error', code: payloadCode(line, code, 'error'), message: words.join(' ')};
		}

		default: {
			throw new GuestScriptError(line, `payload takes started, ready, finished CODE or error CODE MESSAGE, not "${argument}"`);
		}
	}
}

function signal(line: number, name: string): NodeJS.Signals {
	const full = (name.startsWith('SIG') ? name : `SIG${name}`) as NodeJS.Signals;
	if (!GUEST_SIGNALS.includes(full)) {
		throw new GuestScriptError(line, `signal takes one of ${GUEST_SIGNALS.join(' ')}, not "${name}"`);
	}

	return full;
}

function noArgument(line: number, keyword: string, argument: string | undefined): void {
	if (argument !== undefined && argument !== '') {
		throw new GuestScriptError(line, `${keyword} takes nothing after it`);
	}
}

function directive(line: number, keyword: string, argument: string | undefined): GuestDirective {
	switch (keyword) {
		case 'console':
		case 'kmsg':
		case 'log': {
			return {kind: 'write', output: keyword, text: argument ?? ''};
		}

		case 'payload': {
			return {kind: 'payload', report: payload(line, argument ?? '')};
		}

		case 'fail': {
			return {kind: 'fail', text: argument ?? ''};
		}

		case 'fail-flood': {
			return {kind: 'fail-flood', bytes: count(line, keyword, argument ?? '', MAX_FLOOD_BYTES)};
		}

		case 'console-flood': {
			return {kind: 'console-flood', bytes: count(line, keyword, argument ?? '', MAX_FLOOD_BYTES)};
		}

		case 'sleep':
		case 'spawn-holder': {
			return {kind: keyword, ms: count(line, keyword, argument ?? '', MAX_MS)};
		}

		case 'ignore-sigterm':
		case 'ignore-stop': {
			noArgument(line, keyword, argument);
			return {kind: keyword};
		}

		default: {
			throw new GuestScriptError(line, `unknown directive "${keyword}"`);
		}
	}
}

function finalAction(line: number, keyword: string, argument: string | undefined): FinalAction | undefined {
	if (SIMPLE_FINALS.has(keyword)) {
		noArgument(line, keyword, argument);
		return {kind: keyword as 'poweroff'};
	}

	if (keyword === 'signal') {
		return {kind: 'signal', signal: signal(line, argument ?? '')};
	}

	if (keyword === 'exit') {
		return {kind: 'exit', code: count(line, keyword, argument ?? '', 255)};
	}

	return undefined;
}

/**
 * Parses a guest script (docs/crosvm-sim.md): the header line, then one directive per line; `#`
 * starts a comment line; the final action, when present, is the last directive.
 */
export function parseGuestScript(text: string): GuestScript {
	const lines = text.split('\n').map(line => (line.endsWith('\r') ? line.slice(0, -1) : line));
	if (lines[0] !== GUEST_SCRIPT_HEADER) {
		throw new GuestScriptError(1, `not a guest script: the first line must be exactly "${GUEST_SCRIPT_HEADER}"`);
	}

	const script: GuestScript = {directives: [], final: {kind: 'poweroff'}};
	let finalLine: number | undefined;
	for (const [index, raw] of lines.entries()) {
		const line = index + 1;
		const content = raw.trimStart();
		if (index === 0 || content === '' || content.startsWith('#')) {
			continue;
		}

		if (finalLine !== undefined) {
			throw new GuestScriptError(line, `nothing may follow the final action on line ${finalLine}`);
		}

		const space = content.indexOf(' ');
		const keyword = space === -1 ? content : content.slice(0, space);
		const argument = space === -1 ? undefined : content.slice(space + 1);
		const final = finalAction(line, keyword, argument?.trim());
		if (final === undefined) {
			script.directives.push(directive(line, keyword, keyword === 'console' || keyword === 'kmsg' || keyword === 'log' || keyword === 'fail' ? argument : argument?.trim()));
		} else {
			script.final = final;
			finalLine = line;
		}
	}

	return script;
}
