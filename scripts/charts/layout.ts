import type {Chart, ChartState} from './chart-model.js';

/**
 * A deterministic layered layout for nested statecharts, in plain TypeScript (no browser, no
 * native tools): inside each compound state, the children are put in layers by the transitions
 * between them (longest path from the initial child, back edges ignored), ordered within a layer
 * by the barycenter of their predecessors, and centred; parallel regions sit side by side. Text is
 * measured with fixed per-character widths for a monospace font, so the result never depends on
 * installed fonts.
 */

/** Width of one character of the chart font (12px monospace). */
export const CHAR_WIDTH = 7.2;
/** Height of one line of text. */
export const LINE_HEIGHT = 15;

const atomicMinWidth = 90;
const textPadding = 12;
const titleHeight = 26;
const initialMarkerHeight = 22;
const innerPadding = 14;
const minLayerGap = 60;
/** Vertical room per label of the edges that leave a layer downward (labels sit in that gap). */
const labelRowHeight = LINE_HEIGHT + 3;
const siblingGap = 36;
const regionGap = 12;

export interface LaidOutState {
	state: ChartState;
	/** Absolute position of the top-left corner. */
	x: number;
	y: number;
	width: number;
	height: number;
	children: LaidOutState[];
}

export interface ChartLayout {
	root: LaidOutState;
	/** Every laid-out state by state id. */
	byId: Map<string, LaidOutState>;
}

interface Sized {
	state: ChartState;
	width: number;
	height: number;
	/** Children with their offsets from this state's top-left corner. */
	placed: Array<{child: Sized; dx: number; dy: number}>;
}

export function textWidth(text: string): number {
	return text.length * CHAR_WIDTH;
}

/** The child of `state` that is or contains `id`. */
function childContaining(state: ChartState, id: string, containment: Map<string, Set<string>>): ChartState | undefined {
	return state.children.find(child => containment.get(child.id)?.has(id));
}

/** For every state, the ids of itself and all its descendants. */
function descendantSets(root: ChartState): Map<string, Set<string>> {
	const sets = new Map<string, Set<string>>();
	const walk = (state: ChartState): Set<string> => {
		const set = new Set<string>([state.id]);
		for (const child of state.children) {
			for (const id of walk(child)) {
				set.add(id);
			}
		}

		sets.set(state.id, set);
		return set;
	};

	walk(root);
	return sets;
}

/** Assigns children of a compound state to layers; returns the layers in order. */
function layersOf(state: ChartState, edges: Array<[string, string]>): ChartState[][] {
	const children = state.children;
	const index = new Map(children.map((child, position) => [child.id, position]));
	const successors = new Map<string, string[]>(children.map(child => [child.id, []]));
	for (const [from, to] of edges) {
		if (from !== to && !successors.get(from)?.includes(to)) {
			successors.get(from)?.push(to);
		}
	}

	// Depth-first from the initial child, then the rest in document order: edges to a state on the
	// stack close a cycle and are left out of the layering.
	const forward = new Map<string, string[]>(children.map(child => [child.id, []]));
	const visited = new Set<string>();
	const onStack = new Set<string>();
	const visit = (id: string): void => {
		visited.add(id);
		onStack.add(id);
		for (const next of successors.get(id) ?? []) {
			if (onStack.has(next)) {
				continue;
			}

			forward.get(id)?.push(next);
			if (!visited.has(next)) {
				visit(next);
			}
		}

		onStack.delete(id);
	};

	const starts = [state.initial, ...children.map(child => child.id)].filter((id): id is string => id !== undefined && index.has(id));
	for (const id of starts) {
		if (!visited.has(id)) {
			visit(id);
		}
	}

	// Longest path: process in an order where every predecessor comes first (Kahn, by document order).
	const incoming = new Map<string, number>(children.map(child => [child.id, 0]));
	for (const targets of forward.values()) {
		for (const target of targets) {
			incoming.set(target, (incoming.get(target) ?? 0) + 1);
		}
	}

	const layer = new Map<string, number>(children.map(child => [child.id, 0]));
	const ready = children.filter(child => incoming.get(child.id) === 0).map(child => child.id);
	while (ready.length > 0) {
		ready.sort((a, b) => (index.get(a) ?? 0) - (index.get(b) ?? 0));
		const id = ready.shift()!;
		for (const target of forward.get(id) ?? []) {
			layer.set(target, Math.max(layer.get(target) ?? 0, (layer.get(id) ?? 0) + 1));
			const remaining = (incoming.get(target) ?? 0) - 1;
			incoming.set(target, remaining);
			if (remaining === 0) {
				ready.push(target);
			}
		}
	}

	const layerCount = Math.max(0, ...layer.values()) + 1;
	const layers: ChartState[][] = Array.from({length: layerCount}, () => []);
	for (const child of children) {
		layers[layer.get(child.id) ?? 0]!.push(child);
	}

	// Two barycenter sweeps: a state moves toward the mean position of its predecessors.
	const predecessors = new Map<string, string[]>(children.map(child => [child.id, []]));
	for (const [from, targets] of successors) {
		for (const to of targets) {
			predecessors.get(to)?.push(from);
		}
	}

	for (let sweep = 0; sweep < 2; sweep++) {
		const position = new Map<string, number>();
		for (const row of layers) {
			row.forEach((child, column) => {
				position.set(child.id, column / Math.max(1, row.length - 1));
			});
		}

		for (const row of layers.slice(1)) {
			const key = (child: ChartState): number => {
				const placedBefore = (predecessors.get(child.id) ?? []).map(id => position.get(id)).filter((value): value is number => value !== undefined);
				return placedBefore.length === 0 ? (position.get(child.id) ?? 0) : placedBefore.reduce((sum, value) => sum + value, 0) / placedBefore.length;
			};

			const keyed = row.map(child => ({child, key: key(child), order: index.get(child.id) ?? 0}));
			keyed.sort((a, b) => a.key - b.key || a.order - b.order);
			row.splice(0, row.length, ...keyed.map(entry => entry.child));
			row.forEach((child, column) => {
				position.set(child.id, column / Math.max(1, row.length - 1));
			});
		}
	}

	return layers.filter(row => row.length > 0);
}

function headerHeight(state: ChartState): number {
	return titleHeight + state.notes.length * LINE_HEIGHT;
}

function headerWidth(state: ChartState): number {
	return Math.max(textWidth(state.key) + 8, ...state.notes.map(note => textWidth(note))) + 2 * textPadding;
}

/** Lays out a chart; the same chart always gives the same layout. */
export function layoutChart(chart: Chart): ChartLayout {
	const containment = descendantSets(chart.root);

	const size = (state: ChartState): Sized => {
		if (state.children.length === 0) {
			return {
				state,
				width: Math.max(atomicMinWidth, headerWidth(state)),
				height: titleHeight + state.notes.length * LINE_HEIGHT + (state.notes.length > 0 ? 6 : 0),
				placed: [],
			};
		}

		const sizedChildren = new Map(state.children.map(child => [child.id, size(child)]));
		const top = headerHeight(state);
		if (state.type === 'parallel') {
			const regions = state.children.map(child => sizedChildren.get(child.id)!);
			const height = Math.max(...regions.map(region => region.height));
			const placed: Sized['placed'] = [];
			let x = innerPadding;
			for (const region of regions) {
				region.height = height;
				placed.push({child: region, dx: x, dy: top});
				x += region.width + regionGap;
			}

			return {state, width: Math.max(x - regionGap + innerPadding, headerWidth(state)), height: top + height + innerPadding, placed};
		}

		const edges: Array<[string, string]> = [];
		for (const transition of chart.transitions) {
			const from = childContaining(state, transition.source, containment);
			const to = childContaining(state, transition.target, containment);
			if (from !== undefined && to !== undefined) {
				edges.push([from.id, to.id]);
			}
		}

		const layers = layersOf(state, edges);
		const layerOf = new Map(layers.flatMap((row, rowIndex) => row.map(child => [child.id, rowIndex] as const)));
		const labelsBelow = layers.map((_row, rowIndex) => edges.filter(([from, to]) => layerOf.get(from) === rowIndex && (layerOf.get(to) ?? 0) > rowIndex).length);
		const gapBelow = (rowIndex: number): number => Math.max(minLayerGap, ((labelsBelow[rowIndex] ?? 0) * labelRowHeight) + 30);
		const rowWidths = layers.map(row => row.reduce((sum, child) => sum + sizedChildren.get(child.id)!.width, 0) + siblingGap * (row.length - 1));
		const innerWidth = Math.max(...rowWidths);
		const width = Math.max(innerWidth + 2 * innerPadding, headerWidth(state));
		const placed: Sized['placed'] = [];
		let y = top + (state.initial === undefined ? 0 : initialMarkerHeight);
		layers.forEach((row, rowIndex) => {
			const rowHeight = Math.max(...row.map(child => sizedChildren.get(child.id)!.height));
			let x = (width - rowWidths[rowIndex]!) / 2;
			for (const child of row) {
				const sized = sizedChildren.get(child.id)!;
				placed.push({child: sized, dx: x, dy: y + (rowHeight - sized.height) / 2});
				x += sized.width + siblingGap;
			}

			y += rowHeight + gapBelow(rowIndex);
		});
		return {state, width, height: y - gapBelow(layers.length - 1) + innerPadding, placed};
	};

	const byId = new Map<string, LaidOutState>();
	const place = (sized: Sized, x: number, y: number): LaidOutState => {
		const laidOut: LaidOutState = {
			state: sized.state,
			x,
			y,
			width: sized.width,
			height: sized.height,
			children: [],
		};
		byId.set(sized.state.id, laidOut);
		// Children in document order, whatever their layer.
		const ordered = [...sized.placed].sort((a, b) => sized.state.children.indexOf(a.child.state) - sized.state.children.indexOf(b.child.state));
		laidOut.children = ordered.map(({child, dx, dy}) => place(child, x + dx, y + dy));
		return laidOut;
	};

	const root = place(size(chart.root), 0, 0);
	return {root, byId};
}
