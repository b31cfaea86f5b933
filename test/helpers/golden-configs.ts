import type {VmConfig} from '../../src/services/config/vm-config.js';
import type {CrosvmTarget} from '../../src/services/crosvm/command.js';

/**
 * The golden configs of issue 2, shared by the argv goldens and the simulator acceptance test.
 * Paths are placeholders: the sim test swaps in real files of the same roles.
 */
export interface GoldenConfig {
	name: string;
	config: VmConfig;
	/** The target for the `current` argv (the sim is told the same). */
	target: CrosvmTarget;
}

export const LINUX_X86: CrosvmTarget = {os: 'linux', arch: 'x86_64'};
export const LINUX_ARM: CrosvmTarget = {os: 'linux', arch: 'aarch64'};
export const ANDROID_X86: CrosvmTarget = {os: 'android', arch: 'x86_64'};
export const ANDROID_ARM: CrosvmTarget = {os: 'android', arch: 'aarch64'};

export const goldenConfigs = {
	kernelOnly: {name: 'kernel only', target: LINUX_X86, config: {kernel: '/vm/kernel'}},
	kernelInitrdParams: {
		name: 'kernel + initrd + params',
		target: LINUX_X86,
		config: {kernel: '/vm/kernel', initrd: '/vm/initrd', params: 'console=hvc0 androidboot.hardware=crosvm'},
	},
	bootloaderTwoDisks: {
		name: 'bootloader + two disks of mixed writability',
		target: LINUX_X86,
		config: {bootloader: '/vm/bios', disks: [{image: '/vm/system.img', writable: false}, {image: '/vm/data.img', writable: true}]},
	},
	protectedThreeDisks: {
		name: 'protected with three disks',
		target: LINUX_ARM,
		config: {
			bootloader: '/vm/pvmfw',
			protected: true,
			disks: [{image: '/vm/os.img', writable: false}, {image: '/vm/instance.img', writable: true}, {image: '/vm/apk.img', writable: false}],
		},
	},
	consoleAndLog: {
		name: 'console and log given',
		target: LINUX_X86,
		config: {kernel: '/vm/kernel', consoleOutput: '/vm/console.txt', logOutput: '/vm/log.txt'},
	},
	affinityAndProfiles: {
		name: 'affinity and task profiles',
		target: ANDROID_ARM,
		config: {kernel: '/vm/kernel', cpuAffinity: '0=0:1=1-2', taskProfiles: ['SCHED_SP_TOP_APP', 'MaxPerformance']},
	},
	indirectFiles: {
		name: 'indirect files',
		target: LINUX_X86,
		config: {kernel: '/vm/kernel', indirectFiles: ['/vm/instance.img', '/vm/idsig']},
	},
	memoryAndCpus: {name: 'memory and CPUs', target: LINUX_X86, config: {kernel: '/vm/kernel', memoryMib: 2048, cpus: 4}},
} satisfies Record<string, GoldenConfig>;
