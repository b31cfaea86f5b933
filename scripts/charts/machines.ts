import type {AnyStateMachine} from 'xstate';
import {supervisorMachine} from '../../src/machines/supervisor.machine.js';
import {vmMachine} from '../../src/machines/vm.machine.js';

/** The machines whose charts docs/charts/ carries, by file name. */
export const chartedMachines: ReadonlyArray<{name: string; machine: AnyStateMachine}> = [
	{name: 'vm', machine: vmMachine},
	{name: 'supervisor', machine: supervisorMachine},
];
