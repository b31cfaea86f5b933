import type {AnyStateMachine} from 'xstate';
import {groupMachine} from '../../src/machines/group.machine.js';
import {restartMachine} from '../../src/machines/restart.machine.js';
import {supervisorMachine} from '../../src/machines/supervisor.machine.js';
import {vmMachine} from '../../src/machines/vm.machine.js';

/** The machines whose charts docs/charts/ carries, by file name. */
export const chartedMachines: ReadonlyArray<{name: string; machine: AnyStateMachine}> = [
	{name: 'vm', machine: vmMachine},
	{name: 'supervisor', machine: supervisorMachine},
	{name: 'restart', machine: restartMachine},
	{name: 'group', machine: groupMachine},
];
