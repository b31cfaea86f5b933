import {ancestorsById, transitionOwner, type Chart, type ChartTransition} from './chart-model.js';
import {LINE_HEIGHT, layoutChart, textWidth, type LaidOutState} from './layout.js';

/** Numbers as the SVG writes them: at most one decimal, no `-0`. */
function number(value: number): string {
	const rounded = Math.round(value * 10) / 10;
	return Object.is(rounded, -0) ? '0' : String(rounded);
}

function escapeXml(text: string): string {
	return text.replaceAll(/[<>&"']/g, character => ({'<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', '\'': '&apos;'})[character] ?? character);
}

interface Point {
	x: number;
	y: number;
}

/** A cubic Bézier from `start` to `end`. */
interface Curve {
	start: Point;
	control1: Point;
	control2: Point;
	end: Point;
}

function pointOnCurve(curve: Curve, t: number): Point {
	const u = 1 - t;
	const mix = (a: number, b: number, c: number, d: number): number => (u ** 3 * a) + (3 * u * u * t * b) + (3 * u * t * t * c) + (t ** 3 * d);
	return {
		x: mix(curve.start.x, curve.control1.x, curve.control2.x, curve.end.x),
		y: mix(curve.start.y, curve.control1.y, curve.control2.y, curve.end.y),
	};
}

/** The point of a curve whose y is `y` (the curve's y must be monotone, as downward edges are). */
function pointAtY(curve: Curve, y: number): Point {
	let low = 0;
	let high = 1;
	for (let step = 0; step < 30; step++) {
		const middle = (low + high) / 2;
		if (pointOnCurve(curve, middle).y < y) {
			low = middle;
		} else {
			high = middle;
		}
	}

	return pointOnCurve(curve, (low + high) / 2);
}

interface Rect {
	x: number;
	y: number;
	width: number;
	height: number;
}

function overlaps(a: Rect, b: Rect): boolean {
	return a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
}

function contains(outer: LaidOutState, inner: LaidOutState): boolean {
	return inner.x >= outer.x && inner.y >= outer.y && inner.x + inner.width <= outer.x + outer.width && inner.y + inner.height <= outer.y + outer.height;
}

/** Spreads `count` ports over a side of `length`, starting at `from`. */
function port(from: number, length: number, index: number, count: number): number {
	return from + (length * (index + 1)) / (count + 1);
}

/** Routes every transition as a curve between the boxes of its ends. */
type EdgeKind = 'down' | 'up' | 'side' | 'self' | 'nested';

function routeEdges(transitions: ChartTransition[], boxes: Map<string, LaidOutState>): Array<{transition: ChartTransition; curve: Curve; kind: EdgeKind}> {
	type Kind = EdgeKind;
	const classified = transitions.flatMap(transition => {
		const source = boxes.get(transition.source);
		const target = boxes.get(transition.target);
		if (source === undefined || target === undefined) {
			return [];
		}

		let kind: Kind;
		if (source === target) {
			kind = 'self';
		} else if (contains(source, target) || contains(target, source)) {
			kind = 'nested';
		} else if (target.y >= source.y + source.height) {
			kind = 'down';
		} else if (source.y >= target.y + target.height) {
			kind = 'up';
		} else {
			kind = 'side';
		}

		return [{transition, source, target, kind}];
	});

	// Ports: outgoing downward edges leave the bottom side ordered by where they go, incoming ones
	// enter the top side ordered by where they come from, so parallel edges do not coincide.
	const centre = (box: LaidOutState): number => box.x + (box.width / 2);
	const outgoing = new Map<LaidOutState, typeof classified>();
	const incoming = new Map<LaidOutState, typeof classified>();
	for (const edge of classified.filter(candidate => candidate.kind === 'down')) {
		outgoing.set(edge.source, [...(outgoing.get(edge.source) ?? []), edge]);
		incoming.set(edge.target, [...(incoming.get(edge.target) ?? []), edge]);
	}

	for (const list of outgoing.values()) {
		list.sort((a, b) => centre(a.target) - centre(b.target));
	}

	for (const list of incoming.values()) {
		list.sort((a, b) => centre(a.source) - centre(b.source));
	}

	let loopIndex = 0;
	return classified.map(edge => {
		const {source, target, kind} = edge;
		switch (kind) {
			case 'down': {
				const outs = outgoing.get(source)!;
				const ins = incoming.get(target)!;
				const start = {x: port(source.x, source.width, outs.indexOf(edge), outs.length), y: source.y + source.height};
				const end = {x: port(target.x, target.width, ins.indexOf(edge), ins.length), y: target.y};
				const bend = (end.y - start.y) / 2;
				return {transition: edge.transition, kind, curve: {start, control1: {x: start.x, y: start.y + bend}, control2: {x: end.x, y: end.y - bend}, end}};
			}

			case 'side': {
				const rightward = target.x > source.x;
				const start = {x: rightward ? source.x + source.width : source.x, y: source.y + (source.height / 2)};
				const end = {x: rightward ? target.x : target.x + target.width, y: target.y + (target.height / 2)};
				const middle = (start.x + end.x) / 2;
				return {transition: edge.transition, kind, curve: {start, control1: {x: middle, y: start.y - 20}, control2: {x: middle, y: end.y - 20}, end}};
			}

			case 'self': {
				const x = source.x + source.width;
				const start = {x, y: source.y + (source.height / 3)};
				const end = {x, y: source.y + (2 * source.height / 3)};
				return {transition: edge.transition, kind, curve: {start, control1: {x: x + 40, y: start.y - 10}, control2: {x: x + 40, y: end.y + 10}, end}};
			}

			default: {
				// Back edges and edges into or out of a containing state go around the right side.
				loopIndex++;
				const start = {x: source.x + source.width, y: source.y + Math.min(source.height / 2, 40)};
				const end = {x: target.x + target.width, y: target.y + Math.min(target.height / 2, 40)};
				const outside = Math.max(start.x, end.x) + 30 + (10 * (loopIndex % 4));
				return {transition: edge.transition, kind, curve: {start, control1: {x: outside, y: start.y}, control2: {x: outside, y: end.y}, end}};
			}
		}
	});
}

/**
 * Renders a chart to a standalone SVG document, deterministically (same chart, same bytes) and
 * without a browser: see layout.ts for the layout.
 */
export function toSvg(chart: Chart): string {
	const layout = layoutChart(chart);
	const elements: string[] = [];
	const bounds = {minX: 0, minY: 0, maxX: layout.root.width, maxY: layout.root.height};
	const grow = (rect: Rect): void => {
		bounds.minX = Math.min(bounds.minX, rect.x);
		bounds.minY = Math.min(bounds.minY, rect.y);
		bounds.maxX = Math.max(bounds.maxX, rect.x + rect.width);
		bounds.maxY = Math.max(bounds.maxY, rect.y + rect.height);
	};

	const drawState = (box: LaidOutState, regionOfParallel: boolean): void => {
		const {state} = box;
		const isFinal = state.type === 'final';
		const classes = ['state', state.type, ...(regionOfParallel ? ['region'] : [])].join(' ');
		elements.push(`<g class="${classes}" data-id="${escapeXml(state.id)}">`);
		elements.push(`<rect x="${number(box.x)}" y="${number(box.y)}" width="${number(box.width)}" height="${number(box.height)}" rx="6"${regionOfParallel ? ' stroke-dasharray="6 4"' : ''}/>`);
		if (isFinal) {
			elements.push(`<rect x="${number(box.x + 3)}" y="${number(box.y + 3)}" width="${number(box.width - 6)}" height="${number(box.height - 6)}" rx="4"/>`);
		}

		const textX = state.children.length === 0 ? box.x + (box.width / 2) : box.x + 10;
		const anchor = state.children.length === 0 ? 'middle' : 'start';
		elements.push(`<text class="title" x="${number(textX)}" y="${number(box.y + 18)}" text-anchor="${anchor}">${escapeXml(state.key)}${state.type === 'parallel' ? ' ∥' : ''}</text>`);
		state.notes.forEach((note, line) => {
			elements.push(`<text class="note" x="${number(textX)}" y="${number(box.y + 18 + ((line + 1) * LINE_HEIGHT))}" text-anchor="${anchor}">${escapeXml(note)}</text>`);
		});
		elements.push('</g>');
		const initial = state.initial === undefined ? undefined : box.children.find(child => child.state.id === state.initial);
		if (initial !== undefined) {
			const x = initial.x + Math.min(18, initial.width / 4);
			elements.push(`<circle class="initial" cx="${number(x)}" cy="${number(initial.y - 16)}" r="5"/>`);
			elements.push(`<path class="edge" d="M${number(x)},${number(initial.y - 11)} L${number(x)},${number(initial.y)}" marker-end="url(#arrow)"/>`);
		}

		for (const child of box.children) {
			drawState(child, state.type === 'parallel');
		}
	};

	drawState(layout.root, false);
	// A downward edge leaving a nested state is labelled below the outermost box it leaves (the
	// child of the state that holds both ends): that is the gap the layout made room in.
	const ancestors = ancestorsById(chart);
	const labelLevel = (transition: ChartTransition, startY: number): number => {
		const owner = transitionOwner(transition, ancestors);
		const chain = [transition.source, ...(ancestors.get(transition.source) ?? [])];
		const leftBox = owner === undefined ? undefined : layout.byId.get(chain[chain.indexOf(owner) - 1] ?? transition.source);
		const bottom = leftBox === undefined ? startY : Math.max(startY, leftBox.y + leftBox.height);
		return bottom + 6 + (LINE_HEIGHT / 2);
	};

	const placedLabels: Rect[] = [];
	for (const {transition, curve, kind} of routeEdges(chart.transitions, layout.byId)) {
		const {start, control1, control2, end} = curve;
		elements.push(`<path class="edge" d="M${number(start.x)},${number(start.y)} C${number(control1.x)},${number(control1.y)} ${number(control2.x)},${number(control2.y)} ${number(end.x)},${number(end.y)}" marker-end="url(#arrow)"/>`);
		grow({x: Math.min(start.x, control1.x, control2.x, end.x), y: Math.min(start.y, control1.y, control2.y, end.y), width: Math.abs(Math.max(start.x, control1.x, control2.x, end.x) - Math.min(start.x, control1.x, control2.x, end.x)), height: Math.abs(Math.max(start.y, control1.y, control2.y, end.y) - Math.min(start.y, control1.y, control2.y, end.y))});
		// Downward edges label in the gap under their source (the layout made room there), others
		// at the curve's middle; then moved down until the label covers no earlier one.
		const middle = kind === 'down' ? pointAtY(curve, labelLevel(transition, start.y)) : pointOnCurve(curve, 0.5);
		const width = textWidth(transition.label) + 8;
		const label: Rect = {x: middle.x - (width / 2), y: middle.y - (LINE_HEIGHT / 2) - 2, width, height: LINE_HEIGHT + 2};
		while (placedLabels.some(placed => overlaps(placed, label))) {
			label.y += LINE_HEIGHT + 2;
		}

		placedLabels.push(label);
		grow(label);
		elements.push(`<rect class="label" x="${number(label.x)}" y="${number(label.y)}" width="${number(label.width)}" height="${number(label.height)}" rx="3"/>`);
		elements.push(`<text class="label" x="${number(label.x + (width / 2))}" y="${number(label.y + LINE_HEIGHT - 3)}" text-anchor="middle">${escapeXml(transition.label)}</text>`);
	}

	const margin = 10;
	const viewX = bounds.minX - margin;
	const viewY = bounds.minY - margin;
	const width = bounds.maxX - bounds.minX + (2 * margin);
	const height = bounds.maxY - bounds.minY + (2 * margin);
	return [
		`<svg xmlns="http://www.w3.org/2000/svg" viewBox="${number(viewX)} ${number(viewY)} ${number(width)} ${number(height)}" width="${number(width)}" height="${number(height)}" font-family="DejaVu Sans Mono, Menlo, Consolas, monospace" font-size="12">`,
		`<title>${escapeXml(chart.name)} statechart</title>`,
		'<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#333"/></marker></defs>',
		'<style>',
		'.state rect{fill:#fdfdfd;stroke:#555;stroke-width:1.2}',
		'.state.region>rect{fill:none;stroke:#888}',
		'.state.compound>rect,.state.parallel>rect{fill:#f4f6fa}',
		'.state.final>rect{fill:#eef5ee}',
		'text.title{font-weight:bold;fill:#111}',
		'text.note{fill:#555;font-size:11px}',
		'.edge{fill:none;stroke:#333;stroke-width:1.1}',
		'circle.initial{fill:#111}',
		'rect.label{fill:#fff;fill-opacity:0.9;stroke:none}',
		'text.label{fill:#1a4d8f;font-size:11px}',
		'</style>',
		`<rect x="${number(viewX)}" y="${number(viewY)}" width="${number(width)}" height="${number(height)}" fill="#fff"/>`,
		...elements,
		'</svg>',
		'',
	].join('\n');
}

