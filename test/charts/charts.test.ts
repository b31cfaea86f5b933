import {readFileSync} from 'node:fs';
import {fileURLToPath} from 'node:url';
import {and, createMachine, not, setup, type AnyStateMachine} from 'xstate';
import {chartFromMachine, chartStateIds} from '../../scripts/charts/chart-model.js';
import {renderChart} from '../../scripts/charts/charts.js';
import {layoutChart, type LaidOutState} from '../../scripts/charts/layout.js';
import {chartedMachines} from '../../scripts/charts/machines.js';
import {counterMachine, workshopMachine} from '../helpers/fixture-machines.js';

const chartsDirectory = fileURLToPath(new URL('../../docs/charts/', import.meta.url));

describe('the committed charts in docs/charts', () => {
	test.each(chartedMachines.map(({name, machine}) => [name, machine] as const))('%s.mmd and %s.svg match the machine definition', (name, machine) => {
		const files = renderChart(machine);
		// If this fails, the machine changed: run `npx tsx scripts/charts/generate.ts` and commit.
		expect(readFileSync(`${chartsDirectory}${name}.mmd`, 'utf8')).toBe(files.mermaid);
		expect(readFileSync(`${chartsDirectory}${name}.svg`, 'utf8')).toBe(files.svg);
	});

	test('every state node of every charted machine is drawn', () => {
		for (const {machine} of chartedMachines) {
			const {svg} = renderChart(machine);
			for (const id of chartStateIds(chartFromMachine(machine))) {
				expect(svg).toContain(`data-id="${id}"`);
			}
		}
	});
});

describe('Mermaid from any machine (a workshop fixture)', () => {
	const mermaid = renderChart(workshopMachine).mermaid;
	const lines = mermaid.split('\n').map(line => line.trim());

	test('is a stateDiagram-v2 with the machine as the outer composite and its initial state', () => {
		expect(lines).toContain('stateDiagram-v2');
		expect(lines).toContain('[*] --> workshop');
		expect(lines).toContain('state workshop {');
		expect(lines).toContain('[*] --> workshop_closed');
	});

	test('nests compound states and separates parallel regions', () => {
		const open = lines.indexOf('state workshop_open {');
		const bench = lines.indexOf('state workshop_open_bench {');
		const separator = lines.indexOf('--', bench);
		const lamp = lines.indexOf('state workshop_open_lamp {');
		expect(open).toBeGreaterThan(-1);
		expect(bench).toBeGreaterThan(open);
		expect(separator).toBeGreaterThan(bench);
		expect(lamp).toBeGreaterThan(separator);
	});

	test('labels transitions with events, guards, delays and eventless transitions, and marks finals', () => {
		expect(lines).toEqual(expect.arrayContaining([
			'workshop_closed --> workshop_open : OPEN',
			'workshop_open --> workshop_timedOut : after patience (5000 ms)',
			'workshop_open --> workshop_broken : BREAK',
			'workshop_open_bench_pinging --> workshop_open_bench_rested : always [hasPingedThrice]',
			'workshop_open_lamp_off --> workshop_open_lamp_on : TICK',
			'workshop_broken --> [*]',
		]));
	});

	test('shows invoked actors and targetless transitions as notes', () => {
		expect(lines).toContain('note right of workshop_open_lamp : invoke ticker');
		expect(lines).toContain('workshop_open_bench_pinging : PING (no target)');
	});

	test('names guards with their parameters and higher-order guards with their parts', () => {
		const machine = setup({
			guards: {
				isBig: (_, params: {size: number}) => params.size > 1,
				isOpen: () => true,
			},
		}).createMachine({
			id: 'gate',
			initial: 'a',
			states: {
				a: {on: {GO: [{guard: {type: 'isBig', params: {size: 3}}, target: 'b'}, {guard: and([not('isOpen'), 'isOpen']), target: 'c'}]}},
				b: {},
				c: {},
			},
		});
		const {mermaid: text} = renderChart(machine);
		expect(text).toContain('gate_a --> gate_b : GO [isBig(3)]');
		expect(text).toContain('gate_a --> gate_c : GO [and(not(isOpen), isOpen)]');
	});

	test('a guarded transition of a child machine is drawn too', () => {
		expect(renderChart(counterMachine).mermaid).toContain('counter_counting --> counter_done : PING [isLastPing]');
	});
});

describe('SVG from any machine', () => {
	test('is deterministic: the same definition gives the same bytes', () => {
		const build = () => createMachine({
			id: 'light',
			initial: 'green',
			states: {green: {after: {1000: 'yellow'}}, yellow: {after: {500: 'red'}}, red: {on: {RESET: 'green'}}},
		});
		expect(renderChart(build()).svg).toBe(renderChart(build()).svg);
		expect(renderChart(build()).svg).toContain('after 1000 ms');
	});

	test('changes when the machine changes', () => {
		const base = {id: 'door', initial: 'shut', states: {shut: {on: {OPEN: 'ajar'}}, ajar: {on: {SHUT: 'shut'}}}} as const;
		const changed = {...base, states: {...base.states, ajar: {on: {SHUT: 'shut', SLAM: 'shut'}}}};
		expect(renderChart(createMachine(changed)).svg).not.toBe(renderChart(createMachine(base)).svg);
		expect(renderChart(createMachine(changed)).mermaid).not.toBe(renderChart(createMachine(base)).mermaid);
	});

	test('draws every state and every transition label of the workshop', () => {
		const {svg} = renderChart(workshopMachine);
		const chart = chartFromMachine(workshopMachine);
		for (const id of chartStateIds(chart)) {
			expect(svg).toContain(`data-id="${id}"`);
		}

		for (const transition of chart.transitions) {
			expect(svg).toContain(`>${transition.label}</text>`);
		}

		expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
		// Balanced groups: every state group is closed.
		expect(svg.match(/<g /g)?.length).toBe(svg.match(/<\/g>/g)?.length);
	});

	const laidOut: Array<[string, AnyStateMachine]> = [['workshop', workshopMachine], ...chartedMachines.map(({name, machine}): [string, AnyStateMachine] => [name, machine])];
	test.each(laidOut)('%s: children sit inside their parent and siblings never overlap', (_name, machine) => {
		const layout = layoutChart(chartFromMachine(machine));
		const check = (box: LaidOutState): void => {
			for (const child of box.children) {
				expect(child.x).toBeGreaterThanOrEqual(box.x);
				expect(child.y).toBeGreaterThanOrEqual(box.y);
				expect(child.x + child.width).toBeLessThanOrEqual(box.x + box.width);
				expect(child.y + child.height).toBeLessThanOrEqual(box.y + box.height);
				check(child);
			}

			box.children.forEach((a, index) => {
				for (const b of box.children.slice(index + 1)) {
					const apart = a.x + a.width <= b.x || b.x + b.width <= a.x || a.y + a.height <= b.y || b.y + b.height <= a.y;
					expect(apart).toBe(true);
				}
			});
		};

		check(layout.root);
	});

	test('puts a transition target in a lower layer than its source when there is no cycle', () => {
		const layout = layoutChart(chartFromMachine(workshopMachine));
		const closed = layout.byId.get('workshop.closed')!;
		const open = layout.byId.get('workshop.open')!;
		const broken = layout.byId.get('workshop.broken')!;
		expect(open.y).toBeGreaterThan(closed.y + closed.height);
		expect(broken.y).toBeGreaterThan(open.y + open.height);
	});
});
