import {crosvmCommand, hostTarget} from '../../../src/services/crosvm/command.js';
import type {DescriptorAssignment} from '../../../src/services/vmm/driver.js';
import {expectInvalid} from '../../helpers/expect-invalid.js';
import {ANDROID_ARM, ANDROID_X86, goldenConfigs as golden, LINUX_ARM, LINUX_X86} from '../../helpers/golden-configs.js';

const failure = (childFd: number): DescriptorAssignment => ({childFd, role: 'failure', field: 'failure', kind: 'channel'});
const kernel = (childFd: number): DescriptorAssignment => ({childFd, role: 'kernel', field: 'kernel', kind: 'file', source: '/vm/kernel', access: 'read'});

describe('golden command lines', () => {
	test('kernel only', () => {
		const {config, target} = golden.kernelOnly;
		const aosp = crosvmCommand(config, {cid: 10, dialect: 'aosp-2022'});
		expect(aosp.args).toEqual([
			'--extended-status', 'run', '--disable-sandbox', '--cid', '10',
			'--serial=type=sink,hardware=serial,num=1',
			'--serial=type=file,path=/proc/self/fd/3,hardware=serial,num=2',
			'--serial=type=sink,hardware=virtio-console,num=1',
			'--serial=type=sink,hardware=virtio-console,num=2',
			'--serial=type=sink,hardware=virtio-console,num=3',
			'/proc/self/fd/4',
		]);
		expect(aosp.fds).toEqual([failure(3), kernel(4)]);

		const current = crosvmCommand(config, {cid: 10, target});
		expect(current.args).toEqual([
			'--extended-status', 'run', '--disable-sandbox', '--vsock', 'cid=10',
			'--serial', 'type=sink,hardware=serial,num=1',
			'--serial', 'type=file,path=/proc/self/fd/3,hardware=serial,num=2',
			'--serial', 'type=sink,hardware=virtio-console,num=1',
			'--serial', 'type=sink,hardware=virtio-console,num=2',
			'--serial', 'type=sink,hardware=virtio-console,num=3',
			'/proc/self/fd/4',
		]);
		expect(current.fds).toEqual(aosp.fds);
	});

	test('kernel + initrd + params', () => {
		const {config, target} = golden.kernelInitrdParams;
		const fds: DescriptorAssignment[] = [
			failure(3),
			{childFd: 4, role: 'initrd', field: 'initrd', kind: 'file', source: '/vm/initrd', access: 'read'},
			kernel(5),
		];
		const aosp = crosvmCommand(config, {cid: 11, dialect: 'aosp-2022'});
		expect(aosp.args).toEqual([
			'--extended-status', 'run', '--disable-sandbox', '--cid', '11',
			'--serial=type=sink,hardware=serial,num=1',
			'--serial=type=file,path=/proc/self/fd/3,hardware=serial,num=2',
			'--serial=type=sink,hardware=virtio-console,num=1',
			'--serial=type=sink,hardware=virtio-console,num=2',
			'--serial=type=sink,hardware=virtio-console,num=3',
			'--initrd', '/proc/self/fd/4',
			'--params', 'console=hvc0 androidboot.hardware=crosvm',
			'/proc/self/fd/5',
		]);
		expect(aosp.fds).toEqual(fds);

		const current = crosvmCommand(config, {cid: 11, target});
		expect(current.args).toEqual([
			'--extended-status', 'run', '--disable-sandbox', '--vsock', 'cid=11',
			'--serial', 'type=sink,hardware=serial,num=1',
			'--serial', 'type=file,path=/proc/self/fd/3,hardware=serial,num=2',
			'--serial', 'type=sink,hardware=virtio-console,num=1',
			'--serial', 'type=sink,hardware=virtio-console,num=2',
			'--serial', 'type=sink,hardware=virtio-console,num=3',
			'--initrd', '/proc/self/fd/4',
			'--params', 'console=hvc0 androidboot.hardware=crosvm',
			'/proc/self/fd/5',
		]);
		expect(current.fds).toEqual(fds);
	});

	test('bootloader + two disks of mixed writability', () => {
		const {config, target} = golden.bootloaderTwoDisks;
		const fds: DescriptorAssignment[] = [
			failure(3),
			{childFd: 4, role: 'bootloader', field: 'bootloader', kind: 'file', source: '/vm/bios', access: 'read'},
			{childFd: 5, role: 'disk', field: 'disks[0].image', kind: 'file', source: '/vm/system.img', access: 'read'},
			{childFd: 6, role: 'disk', field: 'disks[1].image', kind: 'file', source: '/vm/data.img', access: 'readWrite'},
		];
		const aosp = crosvmCommand(config, {cid: 12, dialect: 'aosp-2022'});
		expect(aosp.args).toEqual([
			'--extended-status', 'run', '--disable-sandbox', '--cid', '12',
			'--serial=type=sink,hardware=serial,num=1',
			'--serial=type=file,path=/proc/self/fd/3,hardware=serial,num=2',
			'--serial=type=sink,hardware=virtio-console,num=1',
			'--serial=type=sink,hardware=virtio-console,num=2',
			'--serial=type=sink,hardware=virtio-console,num=3',
			'--bios', '/proc/self/fd/4',
			'--disk', '/proc/self/fd/5',
			'--rwdisk', '/proc/self/fd/6',
		]);
		expect(aosp.fds).toEqual(fds);

		const current = crosvmCommand(config, {cid: 12, target});
		expect(current.args).toEqual([
			'--extended-status', 'run', '--disable-sandbox', '--vsock', 'cid=12',
			'--serial', 'type=sink,hardware=serial,num=1',
			'--serial', 'type=file,path=/proc/self/fd/3,hardware=serial,num=2',
			'--serial', 'type=sink,hardware=virtio-console,num=1',
			'--serial', 'type=sink,hardware=virtio-console,num=2',
			'--serial', 'type=sink,hardware=virtio-console,num=3',
			'--bios', '/proc/self/fd/4',
			'--block', 'path=/proc/self/fd/5,ro=true',
			'--block', 'path=/proc/self/fd/6,ro=false',
		]);
		expect(current.fds).toEqual(fds);
	});

	test('protected with three disks: swiotlb of 2 MiB x (4 + 3), on aarch64 only in current', () => {
		const {config, target} = golden.protectedThreeDisks;
		const fds: DescriptorAssignment[] = [
			failure(3),
			{childFd: 4, role: 'bootloader', field: 'bootloader', kind: 'file', source: '/vm/pvmfw', access: 'read'},
			{childFd: 5, role: 'disk', field: 'disks[0].image', kind: 'file', source: '/vm/os.img', access: 'read'},
			{childFd: 6, role: 'disk', field: 'disks[1].image', kind: 'file', source: '/vm/instance.img', access: 'readWrite'},
			{childFd: 7, role: 'disk', field: 'disks[2].image', kind: 'file', source: '/vm/apk.img', access: 'read'},
		];
		const aosp = crosvmCommand(config, {cid: 2048, dialect: 'aosp-2022'});
		expect(aosp.args).toEqual([
			'--extended-status', 'run', '--disable-sandbox', '--cid', '2048',
			'--protected-vm', '--swiotlb', '14',
			'--serial=type=sink,hardware=serial,num=1',
			'--serial=type=file,path=/proc/self/fd/3,hardware=serial,num=2',
			'--serial=type=sink,hardware=virtio-console,num=1',
			'--serial=type=sink,hardware=virtio-console,num=2',
			'--serial=type=sink,hardware=virtio-console,num=3',
			'--bios', '/proc/self/fd/4',
			'--disk', '/proc/self/fd/5',
			'--rwdisk', '/proc/self/fd/6',
			'--disk', '/proc/self/fd/7',
		]);
		expect(aosp.fds).toEqual(fds);

		const tail = [
			'--serial', 'type=sink,hardware=serial,num=1',
			'--serial', 'type=file,path=/proc/self/fd/3,hardware=serial,num=2',
			'--serial', 'type=sink,hardware=virtio-console,num=1',
			'--serial', 'type=sink,hardware=virtio-console,num=2',
			'--serial', 'type=sink,hardware=virtio-console,num=3',
			'--bios', '/proc/self/fd/4',
			'--block', 'path=/proc/self/fd/5,ro=true',
			'--block', 'path=/proc/self/fd/6,ro=false',
			'--block', 'path=/proc/self/fd/7,ro=true',
		];
		const current = crosvmCommand(config, {cid: 2048, target});
		expect(current.args).toEqual(['--extended-status', 'run', '--disable-sandbox', '--vsock', 'cid=2048', '--protected-vm', '--swiotlb', '14', ...tail]);
		expect(current.fds).toEqual(fds);

		const x86 = crosvmCommand(config, {cid: 2048, target: LINUX_X86});
		expect(x86.args).toEqual(['--extended-status', 'run', '--disable-sandbox', '--vsock', 'cid=2048', '--protected-vm', ...tail]);
	});

	test('console and log given: the console is one descriptor named twice', () => {
		const {config, target} = golden.consoleAndLog;
		const fds: DescriptorAssignment[] = [
			{childFd: 3, role: 'console', field: 'consoleOutput', kind: 'file', source: '/vm/console.txt', access: 'append'},
			{childFd: 4, role: 'log', field: 'logOutput', kind: 'file', source: '/vm/log.txt', access: 'append'},
			failure(5),
			kernel(6),
		];
		const aosp = crosvmCommand(config, {cid: 13, dialect: 'aosp-2022'});
		expect(aosp.args).toEqual([
			'--extended-status', 'run', '--disable-sandbox', '--cid', '13',
			'--serial=type=file,path=/proc/self/fd/3,hardware=serial,num=1',
			'--serial=type=file,path=/proc/self/fd/5,hardware=serial,num=2',
			'--serial=type=file,path=/proc/self/fd/3,hardware=virtio-console,num=1',
			'--serial=type=sink,hardware=virtio-console,num=2',
			'--serial=type=file,path=/proc/self/fd/4,hardware=virtio-console,num=3',
			'/proc/self/fd/6',
		]);
		expect(aosp.fds).toEqual(fds);

		const current = crosvmCommand(config, {cid: 13, target});
		expect(current.args).toEqual([
			'--extended-status', 'run', '--disable-sandbox', '--vsock', 'cid=13',
			'--serial', 'type=file,path=/proc/self/fd/3,hardware=serial,num=1',
			'--serial', 'type=file,path=/proc/self/fd/5,hardware=serial,num=2',
			'--serial', 'type=file,path=/proc/self/fd/3,hardware=virtio-console,num=1',
			'--serial', 'type=sink,hardware=virtio-console,num=2',
			'--serial', 'type=file,path=/proc/self/fd/4,hardware=virtio-console,num=3',
			'/proc/self/fd/6',
		]);
		expect(current.fds).toEqual(fds);
	});

	test('affinity and task profiles: comma-joined in 2022, one flag per name today', () => {
		const {config, target} = golden.affinityAndProfiles;
		const aosp = crosvmCommand(config, {cid: 14, dialect: 'aosp-2022'});
		expect(aosp.args).toEqual([
			'--extended-status', 'run', '--disable-sandbox', '--cid', '14',
			'--cpu-affinity', '0=0:1=1-2',
			'--task-profiles', 'SCHED_SP_TOP_APP,MaxPerformance',
			'--serial=type=sink,hardware=serial,num=1',
			'--serial=type=file,path=/proc/self/fd/3,hardware=serial,num=2',
			'--serial=type=sink,hardware=virtio-console,num=1',
			'--serial=type=sink,hardware=virtio-console,num=2',
			'--serial=type=sink,hardware=virtio-console,num=3',
			'/proc/self/fd/4',
		]);
		expect(aosp.fds).toEqual([failure(3), kernel(4)]);

		const current = crosvmCommand(config, {cid: 14, target});
		expect(current.args).toEqual([
			'--extended-status', 'run', '--disable-sandbox', '--vsock', 'cid=14',
			'--cpu-affinity', '0=0:1=1-2',
			'--task-profiles', 'SCHED_SP_TOP_APP',
			'--task-profiles', 'MaxPerformance',
			'--serial', 'type=sink,hardware=serial,num=1',
			'--serial', 'type=file,path=/proc/self/fd/3,hardware=serial,num=2',
			'--serial', 'type=sink,hardware=virtio-console,num=1',
			'--serial', 'type=sink,hardware=virtio-console,num=2',
			'--serial', 'type=sink,hardware=virtio-console,num=3',
			'/proc/self/fd/4',
		]);
		expect(current.fds).toEqual([failure(3), kernel(4)]);
		expect(crosvmCommand(config, {cid: 14, target: ANDROID_X86}).args).toEqual(current.args);
	});

	test('indirect files: inherited first, never named in argv', () => {
		const {config, target} = golden.indirectFiles;
		const fds: DescriptorAssignment[] = [
			{childFd: 3, role: 'indirect', field: 'indirectFiles[0]', kind: 'file', source: '/vm/instance.img', access: 'read'},
			{childFd: 4, role: 'indirect', field: 'indirectFiles[1]', kind: 'file', source: '/vm/idsig', access: 'read'},
			failure(5),
			kernel(6),
		];
		const aosp = crosvmCommand(config, {cid: 15, dialect: 'aosp-2022'});
		expect(aosp.args).toEqual([
			'--extended-status', 'run', '--disable-sandbox', '--cid', '15',
			'--serial=type=sink,hardware=serial,num=1',
			'--serial=type=file,path=/proc/self/fd/5,hardware=serial,num=2',
			'--serial=type=sink,hardware=virtio-console,num=1',
			'--serial=type=sink,hardware=virtio-console,num=2',
			'--serial=type=sink,hardware=virtio-console,num=3',
			'/proc/self/fd/6',
		]);
		expect(aosp.fds).toEqual(fds);

		const current = crosvmCommand(config, {cid: 15, target});
		expect(current.args).toEqual([
			'--extended-status', 'run', '--disable-sandbox', '--vsock', 'cid=15',
			'--serial', 'type=sink,hardware=serial,num=1',
			'--serial', 'type=file,path=/proc/self/fd/5,hardware=serial,num=2',
			'--serial', 'type=sink,hardware=virtio-console,num=1',
			'--serial', 'type=sink,hardware=virtio-console,num=2',
			'--serial', 'type=sink,hardware=virtio-console,num=3',
			'/proc/self/fd/6',
		]);
		expect(current.fds).toEqual(fds);
	});

	test('memory and CPUs', () => {
		const {config, target} = golden.memoryAndCpus;
		const aosp = crosvmCommand(config, {cid: 16, dialect: 'aosp-2022'});
		expect(aosp.args).toEqual([
			'--extended-status', 'run', '--disable-sandbox', '--cid', '16',
			'--mem', '2048',
			'--cpus', '4',
			'--serial=type=sink,hardware=serial,num=1',
			'--serial=type=file,path=/proc/self/fd/3,hardware=serial,num=2',
			'--serial=type=sink,hardware=virtio-console,num=1',
			'--serial=type=sink,hardware=virtio-console,num=2',
			'--serial=type=sink,hardware=virtio-console,num=3',
			'/proc/self/fd/4',
		]);
		expect(aosp.fds).toEqual([failure(3), kernel(4)]);

		const current = crosvmCommand(config, {cid: 16, target});
		expect(current.args).toEqual([
			'--extended-status', 'run', '--disable-sandbox', '--vsock', 'cid=16',
			'--mem', '2048',
			'--cpus', '4',
			'--serial', 'type=sink,hardware=serial,num=1',
			'--serial', 'type=file,path=/proc/self/fd/3,hardware=serial,num=2',
			'--serial', 'type=sink,hardware=virtio-console,num=1',
			'--serial', 'type=sink,hardware=virtio-console,num=2',
			'--serial', 'type=sink,hardware=virtio-console,num=3',
			'/proc/self/fd/4',
		]);
		expect(current.fds).toEqual([failure(3), kernel(4)]);
	});

	test('extras: control socket after the CID, payload UART after the five, payload fd last', () => {
		const config = {kernel: '/vm/kernel', consoleOutput: 7, disks: [{image: '/vm/os.img', writable: false}]};
		const fds: DescriptorAssignment[] = [
			{childFd: 3, role: 'console', field: 'consoleOutput', kind: 'file', source: 7, access: 'append'},
			failure(4),
			{childFd: 5, role: 'disk', field: 'disks[0].image', kind: 'file', source: '/vm/os.img', access: 'read'},
			kernel(6),
			{childFd: 7, role: 'payload', field: 'payload', kind: 'channel'},
		];
		const extras = {controlSocket: '/run/vm/crosvm.sock', payloadChannel: true};
		const aosp = crosvmCommand(config, {cid: 17, dialect: 'aosp-2022', ...extras});
		expect(aosp.args).toEqual([
			'--extended-status', 'run', '--disable-sandbox', '--cid', '17',
			'--socket', '/run/vm/crosvm.sock',
			'--serial=type=file,path=/proc/self/fd/3,hardware=serial,num=1',
			'--serial=type=file,path=/proc/self/fd/4,hardware=serial,num=2',
			'--serial=type=file,path=/proc/self/fd/3,hardware=virtio-console,num=1',
			'--serial=type=sink,hardware=virtio-console,num=2',
			'--serial=type=sink,hardware=virtio-console,num=3',
			'--serial=type=file,path=/proc/self/fd/7,hardware=serial,num=3',
			'--disk', '/proc/self/fd/5',
			'/proc/self/fd/6',
		]);
		expect(aosp.fds).toEqual(fds);

		const current = crosvmCommand(config, {cid: 17, target: LINUX_X86, ...extras});
		expect(current.args).toEqual([
			'--extended-status', 'run', '--disable-sandbox', '--vsock', 'cid=17',
			'--socket', '/run/vm/crosvm.sock',
			'--serial', 'type=file,path=/proc/self/fd/3,hardware=serial,num=1',
			'--serial', 'type=file,path=/proc/self/fd/4,hardware=serial,num=2',
			'--serial', 'type=file,path=/proc/self/fd/3,hardware=virtio-console,num=1',
			'--serial', 'type=sink,hardware=virtio-console,num=2',
			'--serial', 'type=sink,hardware=virtio-console,num=3',
			'--serial', 'type=file,path=/proc/self/fd/7,hardware=serial,num=3',
			'--block', 'path=/proc/self/fd/5,ro=true',
			'/proc/self/fd/6',
		]);
		expect(current.fds).toEqual(fds);
	});

	test('a value that crosvm\'s split at "=" would tear is glued to its flag', () => {
		const config = {kernel: '/vm/kernel', params: '-x=1 quiet', taskProfiles: ['-p=q']};
		const aosp = crosvmCommand(config, {cid: 18, dialect: 'aosp-2022'});
		expect(aosp.args).toContain('--params=-x=1 quiet');
		expect(aosp.args).toContain('--task-profiles=-p=q');
		expect(aosp.args).not.toContain('--params');
		const current = crosvmCommand(config, {cid: 18, target: ANDROID_ARM, controlSocket: '-s=t'});
		expect(current.args).toContain('--params=-x=1 quiet');
		expect(current.args).toContain('--task-profiles=-p=q');
		expect(current.args).toContain('--socket=-s=t');
	});
});

describe('what the target or the options refuse', () => {
	test('task profiles on a Linux build are refused in dialect current', () => {
		expectInvalid(
			() => crosvmCommand(golden.affinityAndProfiles.config, {cid: 10, target: LINUX_ARM}),
			'taskProfiles',
			'task profiles are an Android feature: crosvm for linux has no --task-profiles flag and would refuse to start; leave taskProfiles empty or target an android build',
		);
	});

	test('an empty task profile list is no task profile', () => {
		expect(crosvmCommand({kernel: '/k', taskProfiles: []}, {cid: 10, target: LINUX_X86}).args).not.toContain('--task-profiles');
	});

	test.each([0, 1, 2, 2.5, -3, 0xFF_FF_FF_FF, Number.NaN])('cid %p is refused', cid => {
		expectInvalid(
			() => crosvmCommand({kernel: '/k'}, {cid, target: LINUX_X86}),
			'cid',
			'must be an integer from 3 to 4294967294: 0, 1 and 2 are the hypervisor, loopback and host, 4294967295 is VMADDR_CID_ANY',
			'option',
		);
	});

	test('cid 3 and 4294967294 are guest CIDs', () => {
		expect(crosvmCommand({kernel: '/k'}, {cid: 3, dialect: 'aosp-2022'}).args.slice(3, 5)).toEqual(['--cid', '3']);
		expect(crosvmCommand({kernel: '/k'}, {cid: 0xFF_FF_FF_FE, target: LINUX_X86}).args.slice(3, 5)).toEqual(['--vsock', 'cid=4294967294']);
	});

	test('an unknown dialect or target', () => {
		expectInvalid(() => crosvmCommand({kernel: '/k'}, {cid: 10, dialect: 'qemu' as 'current'}), 'dialect', 'must be \'current\' or \'aosp-2022\'', 'option');
		expectInvalid(
			() => crosvmCommand({kernel: '/k'}, {cid: 10, target: {os: 'windows', arch: 'x86_64'} as unknown as typeof LINUX_X86}),
			'target',
			'must be {os: \'linux\' | \'android\', arch: \'x86_64\' | \'aarch64\'}',
		);
	});

	test('a control socket path too long to bind', () => {
		expectInvalid(
			() => crosvmCommand({kernel: '/k'}, {cid: 10, target: LINUX_X86, controlSocket: `/tmp/${'x'.repeat(103)}`}),
			'controlSocket',
			'is longer than 107 bytes: a Unix socket cannot be bound there',
		);
		expect(crosvmCommand({kernel: '/k'}, {cid: 10, target: LINUX_X86, controlSocket: `/tmp/${'x'.repeat(102)}`}).args).toContain('--socket');
	});

	test('the reference\'s rules hold without any I/O', () => {
		expectInvalid(() => crosvmCommand({}, {cid: 10, dialect: 'aosp-2022'}), 'kernel', 'VM must have either a bootloader or a kernel image.');
		expectInvalid(() => crosvmCommand({kernel: '/k', memoryMib: 0}, {cid: 10, target: LINUX_X86}), 'memoryMib', 'must be a positive integer');
	});

	test('the default target is the host\'s', () => {
		const host = hostTarget();
		expect(host.os).toBe('linux');
		expect(host.arch).toBe(process.arch === 'arm64' ? 'aarch64' : 'x86_64');
		const config = {kernel: '/k', protected: true};
		expect(crosvmCommand(config, {cid: 10}).args).toEqual(crosvmCommand(config, {cid: 10, target: host}).args);
	});
});
