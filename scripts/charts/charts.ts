import type {AnyStateMachine} from 'xstate';
import {chartFromMachine} from './chart-model.js';
import {toMermaid} from './mermaid.js';
import {toSvg} from './svg.js';

/** The files drawn for one machine: Mermaid source and a rendered SVG. */
export interface ChartFiles {
	mermaid: string;
	svg: string;
}

/** Draws any XState v5 machine from its definition. Pure: the same machine gives the same bytes. */
export function renderChart(machine: AnyStateMachine): ChartFiles {
	const chart = chartFromMachine(machine);
	return {mermaid: toMermaid(chart), svg: toSvg(chart)};
}
