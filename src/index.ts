export {VmwardenError, InvalidConfigError} from './errors.js';
export type {VmConfig, DiskConfig, FileSource} from './services/vm-config.js';
export {PLATFORM_VERSION} from './services/vm-config.js';
export {PAYLOAD_STATES, type PayloadState} from './services/payload-state.js';
export {
	PAYLOAD_PROTOCOL_VERSION,
	formatPayloadReport,
	parsePayloadLine,
	PayloadLineDecoder,
	type PayloadReport,
	type PayloadLine,
} from './services/payload-protocol.js';
export {DeathReason} from './services/death-reason.js';
export {parseCpuAffinity, type CpuAffinity} from './services/cpu-affinity.js';
export type {
	VmmDriver,
	VmmCommand,
	VmmCommandOptions,
	VmmExit,
	VmmStopContext,
	DescriptorAssignment,
	DescriptorRole,
	FileAccess,
} from './services/vmm-driver.js';
