// A host process for the inherited-descriptor test: starts one VM, prints its pid, stops it on the
// first line of stdin, prints the death and exits. Whatever descriptors it inherited stay open.
import winston from 'winston';
import {createVm} from '../../../../src/vm.js';
import {defaultVmmEnvironment} from '../../../../src/services/vmm/vmm-environment.js';

const [vmmPath, kernel, tempRoot] = process.argv.slice(2);
// The stand-in VMM writes its records where VMW_FD_RECORDS says: a VMM gets only what it is given.
const vmmEnvironment = {...defaultVmmEnvironment(), VMW_FD_RECORDS: process.env['VMW_FD_RECORDS'] ?? ''};
const vm = createVm({kernel}, {cid: 4100, crosvmPath: vmmPath, dialect: 'current', tempRoot, logger: winston.createLogger({silent: true}), vmmEnvironment});
await vm.start();
process.stdout.write(`${JSON.stringify({pid: vm.pid})}\n`);
process.stdin.once('data', () => {
	void vm.stop().then(death => {
		process.stdout.write(`${JSON.stringify({death: death?.reason})}\n`);
		process.stdin.destroy();
	});
});
