import {expect, test} from '@jest/globals';
import {checkConfigShape} from '../../../src/services/config/validate.js';
import type {VmConfig} from '../../../src/services/config/vm-config.js';
import {qemuCommand} from '../../../src/services/qemu/command.js';
import {expectInvalid} from '../../helpers/expect-invalid.js';

const kernel = '/boot/vmlinuz';

test('balloon and capture are checked with the rest of the config', () => {
	expect(() => {
		checkConfigShape({kernel, balloon: true, capture: {console: true, log: false}});
	}).not.toThrow();
	expectInvalid(() => {
		checkConfigShape({kernel, balloon: 'yes'} as unknown as VmConfig);
	}, 'balloon', 'must be a boolean');
	expectInvalid(() => {
		checkConfigShape({kernel, capture: true} as unknown as VmConfig);
	}, 'capture', 'must be an object: {console?: boolean, log?: boolean}');
	expectInvalid(() => {
		checkConfigShape({kernel, capture: {console: 1}} as unknown as VmConfig);
	}, 'capture.console', 'must be a boolean');
	expectInvalid(() => {
		checkConfigShape({kernel, capture: {stderr: true}} as unknown as VmConfig);
	}, 'capture.stderr', 'is not a capture field');
});

test('QEMU gets a balloon device only when the config asks for one', () => {
	const options = {cid: 3, qmpSocket: '/run/vm/qemu.sock', eventLog: '/run/vm/events.log', payloadChannel: false};
	expect(qemuCommand({kernel}, options).args).not.toContain('virtio-balloon-pci,id=vmw-balloon');
	expect(qemuCommand({kernel, balloon: true}, options).args).toContain('virtio-balloon-pci,id=vmw-balloon');
});
