import {ancestorsById, transitionOwner, type Chart, type ChartState, type ChartTransition} from './chart-model.js';

/** Mermaid state ids: letters, digits and underscores only, unique in the diagram. */
function mermaidIds(chart: Chart): Map<string, string> {
	const ids = new Map<string, string>();
	const used = new Set<string>();
	const walk = (state: ChartState): void => {
		const base = state.id.replaceAll(/\W/g, '_');
		let id = base;
		for (let suffix = 2; used.has(id); suffix++) {
			id = `${base}_${suffix}`;
		}

		used.add(id);
		ids.set(state.id, id);
		for (const child of state.children) {
			walk(child);
		}
	};

	walk(chart.root);
	return ids;
}

/** Text Mermaid reads as text: no statement separators, braces or comment marks. */
function mermaidText(text: string): string {
	return text.replaceAll(/[;{}#"]/g, character => ({';': ',', '{': '(', '}': ')', '#': '', '"': '\''})[character] ?? character);
}

/**
 * Writes a chart as a Mermaid `stateDiagram-v2`: the machine is the outermost composite state,
 * compound states are composites, parallel regions are separated by `--`, invoked actors and
 * targetless transitions are notes, and every transition is labelled with its event, guard or delay.
 */
export function toMermaid(chart: Chart): string {
	const ids = mermaidIds(chart);
	const ancestors = ancestorsById(chart);
	const idOf = (stateId: string): string => ids.get(stateId) ?? stateId.replaceAll(/\W/g, '_');
	const edgesByOwner = new Map<string | undefined, ChartTransition[]>();
	for (const transition of chart.transitions) {
		const owner = transitionOwner(transition, ancestors);
		edgesByOwner.set(owner, [...(edgesByOwner.get(owner) ?? []), transition]);
	}

	const lines: string[] = [
		'%% Generated from the machine definition by scripts/charts/generate.ts. Do not edit.',
		'stateDiagram-v2',
	];
	const edgeLines = (owner: string | undefined, indent: string): string[] =>
		(edgesByOwner.get(owner) ?? []).map(edge => `${indent}${idOf(edge.source)} --> ${idOf(edge.target)} : ${mermaidText(edge.label)}`);

	const writeState = (state: ChartState, indent: string): void => {
		const id = idOf(state.id);
		lines.push(`${indent}state "${mermaidText(state.key)}" as ${id}`);
		if (state.children.length === 0) {
			for (const note of state.notes) {
				lines.push(`${indent}${id} : ${mermaidText(note)}`);
			}

			return;
		}

		lines.push(`${indent}state ${id} {`);
		const inner = `${indent}\t`;
		if (state.initial !== undefined) {
			lines.push(`${inner}[*] --> ${idOf(state.initial)}`);
		}

		state.children.forEach((child, index) => {
			if (state.type === 'parallel' && index > 0) {
				lines.push(`${inner}--`);
			}

			writeState(child, inner);
		});
		for (const child of state.children) {
			if (child.type === 'final') {
				lines.push(`${inner}${idOf(child.id)} --> [*]`);
			}
		}

		lines.push(...edgeLines(state.id, inner), `${indent}}`);
		for (const note of state.notes) {
			lines.push(`${indent}note right of ${id} : ${mermaidText(note)}`);
		}
	};

	lines.push(`\t[*] --> ${idOf(chart.root.id)}`);
	writeState(chart.root, '\t');
	lines.push(...edgeLines(undefined, '\t'));
	return `${lines.join('\n')}\n`;
}
