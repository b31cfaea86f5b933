import type {Scenario} from './scenarios.js';

/** What the demo knows about one VM of its fleet. */
export interface FleetRow {
	scenario: Scenario;
	cid: number;
	state: string;
	payloadState: string;
	lastEvent: string;
	createdAt: number;
	runningAt: number | undefined;
	diedAt: number | undefined;
	reason: string | undefined;
	initiator: string | undefined;
	failure: string | undefined;
	/** How many times the supervisor restarted it. */
	restarts: number;
}

const RESET = '\u001B[0m';
const BOLD = '\u001B[1m';
const DIM = '\u001B[2m';
const GREEN = '\u001B[32m';
const RED = '\u001B[31m';
const YELLOW = '\u001B[33m';
const CYAN = '\u001B[36m';

function pad(text: string, width: number): string {
	return text.length > width ? `${text.slice(0, width - 1)}…` : text.padEnd(width);
}

/** `text` (the state, already padded) in the state's colour. */
function colourState(state: string, text: string): string {
	const code = state === 'Running' ? CYAN : state === 'Dead' ? DIM : state === 'Failed' ? RED : YELLOW;
	return `${code}${text}${RESET}`;
}

/** Whether a finished row ended as its scenario expects. */
export function rowMatches(row: FleetRow): boolean {
	return row.reason === row.scenario.expected && row.initiator === row.scenario.expectedInitiator && row.restarts === (row.scenario.expectedRestarts ?? 0);
}

/**
 * Draws the fleet: on a terminal, the whole table is redrawn in place (plain ANSI: cursor up, clear
 * line); elsewhere, the caller prints a line per event instead and this is not used.
 */
export class LiveTable {
	#linesDrawn = 0;
	readonly #write: (text: string) => void;
	readonly #columns: () => number;

	/** `columns` is read at each draw: a line longer than the terminal would wrap and break the redraw. */
	constructor(write: (text: string) => void, columns: () => number) {
		this.#write = write;
		this.#columns = columns;
	}

	draw(rows: readonly FleetRow[], now: number, footer: string): void {
		// CID, VM, state, payload and elapsed take 74 columns; the last event gets what is left.
		const eventWidth = Math.max(10, this.#columns() - 75);
		const lines = [
			`${BOLD}${pad('CID', 6)} ${pad('VM', 36)} ${pad('state', 11)} ${pad('payload', 9)} ${pad('elapsed', 8)} last event${RESET}`,
			...rows.map(row => {
				const elapsed = `${(((row.diedAt ?? now) - row.createdAt) / 1000).toFixed(1)}s`;
				return `${pad(String(row.cid), 6)} ${pad(row.scenario.name, 36)} ${colourState(row.state, pad(row.state, 11))} ${pad(row.payloadState, 9)} ${pad(elapsed, 8)} ${pad(row.lastEvent, eventWidth).trimEnd()}`;
			}),
			`${DIM}${pad(footer, this.#columns() - 1).trimEnd()}${RESET}`,
		];
		// Move up over what was drawn last time, then rewrite each line.
		let text = this.#linesDrawn > 0 ? `\u001B[${this.#linesDrawn}A` : '';
		for (const line of lines) {
			text += `\r\u001B[2K${line}\n`;
		}

		this.#write(text);
		this.#linesDrawn = lines.length;
	}
}

/** The closing table: CID, scenario, reason (expected), initiator, restarts, timings (of the last life). */
export function summaryTable(rows: readonly FleetRow[], colour: boolean): string {
	const header = `${pad('CID', 6)} ${pad('VM', 36)} ${pad('reason', 40)} ${pad('by', 10)} ${pad('restarts', 8)} ${pad('to run', 8)} ${pad('lifetime', 9)} ok`;
	const lines = rows.map(row => {
		const ok = rowMatches(row);
		const reason = row.reason === row.scenario.expected ? row.reason : `${row.reason ?? 'none'} (want ${row.scenario.expected})`;
		const initiator = row.initiator === row.scenario.expectedInitiator ? row.initiator : `${row.initiator ?? '-'}≠${row.scenario.expectedInitiator}`;
		const expectedRestarts = row.scenario.expectedRestarts ?? 0;
		const restarts = row.restarts === expectedRestarts ? String(row.restarts) : `${row.restarts}≠${expectedRestarts}`;
		const toRun = row.runningAt === undefined ? '-' : `${row.runningAt - row.createdAt}ms`;
		const lifetime = row.diedAt === undefined || row.runningAt === undefined ? '-' : `${((row.diedAt - row.runningAt) / 1000).toFixed(2)}s`;
		const mark = ok ? (colour ? `${GREEN}yes${RESET}` : 'yes') : (colour ? `${RED}NO${RESET}` : 'NO');
		return `${pad(String(row.cid), 6)} ${pad(row.scenario.name, 36)} ${pad(reason, 40)} ${pad(initiator, 10)} ${pad(restarts, 8)} ${pad(toRun, 8)} ${pad(lifetime, 9)} ${mark}`;
	});
	return [colour ? `${BOLD}${header}${RESET}` : header, ...lines].join('\n');
}
