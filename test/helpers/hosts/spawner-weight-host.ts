// A host process for the spawner-weight test: starts two spawner processes at once (one child
// each), prints their pids, and ends them when its stdin closes.
import {once} from 'node:events';
import {SpawnerPool} from '../../../src/services/vmm/spawn/spawner.js';
import {defaultVmmEnvironment} from '../../../src/services/vmm/vmm-environment.js';

const pools = [new SpawnerPool(), new SpawnerPool()];
const children = await Promise.all(pools.map(async pool => pool.spawn('sleep', ['60'], defaultVmmEnvironment(), ['ignore', 'ignore', 'ignore'], [])));
process.stdout.write(`${JSON.stringify({children: children.map(child => child.pid)})}\n`);
process.stdin.resume();
await once(process.stdin, 'end');
for (const child of children) {
	child.kill('SIGKILL');
}

await Promise.all(children.map(async child => child.exited));
await Promise.all(pools.map(async pool => pool.closeIdle()));
