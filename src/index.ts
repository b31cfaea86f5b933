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
export {crosvmCommand, hostTarget, type CrosvmDialect, type CrosvmTarget, type CrosvmCommandOptions} from './services/crosvm-command.js';
export {validateConfig} from './services/validate-config.js';
export {openDescriptors, type OpenedDescriptors} from './services/open-descriptors.js';
export {createCrosvmDriver, crosvmDriver, crosvmExitReason, StopRequestError, type CrosvmDriverOptions} from './services/crosvm-driver.js';
export {MAX_PAYLOAD_LINE_BYTES} from './services/payload-protocol.js';
export {createVm, createVmHandle, vmMachineInput, DEFAULT_STOP_TIMEOUT_MS, type Vm, type VmDeath, type VmEvent, type VmEventType, type VmState, type Requester, type Initiator, type CreateVmOptions, type VmHandleOptions, type VmActor, type VmSnapshot} from './vm.js';
export {vmMachine, type VmMachineInput, type VmOutput} from './machines/vm-machine.js';
export {VmSpawnError, InvalidPayloadTransitionError, VmStateError, type VmSpawnErrorCode} from './services/vm-errors.js';
export {isNestedVirtualization, defaultBootHangupTimeoutMs} from './services/boot-timeout.js';
export {MAX_FAILURE_TEXT_BYTES} from './services/failure-channel.js';
export {createSupervisor, SupervisorBusyError, SupervisorShutDownError, NoAvailableCidError, DEFAULT_CID_RANGE, type Supervisor, type SupervisorOptions, type SupervisorEvent, type CreateSupervisedVmOptions, type CidRange, type ReapedVm, type StaleVmOutcome} from './supervisor.js';
export {supervisorMachine, STOP_BATCH_SIZE, type SupervisorMachineEmitted} from './machines/supervisor-machine.js';
export {createQemuDriver, qemuDriver, qemuExitReason, QEMU_EVENT_LOG, type QemuDriverOptions} from './services/qemu-driver.js';
export {qemuCommand, type QemuCommandOptions, type QemuAccelerator} from './services/qemu-command.js';
export {qmpExecute, QmpError} from './services/qmp-client.js';
export type {VmmExitContext} from './services/vmm-driver.js';
export {createInspectionRecorder, type InspectionRecorder, type InspectionRecorderOptions} from './services/inspection-recorder.js';
export {replayInspection, readInspection, InspectionFileError, type InspectionReceiver, type ReplayOptions, type ReplaySummary, type ReplayedActorRef} from './services/inspection-replay.js';
export {INSPECTION_FORMAT, INSPECTION_FORMAT_VERSION, isInspectionEventType, type InspectionRecord, type InspectionLine, type InspectionFileHeader, type InspectionDefinitionRecord, type RecordedSnapshot, type RecordedTransition, type InspectionEventType} from './services/inspection-format.js';
export {toJsonValue, type JsonValue, type SerializeOptions} from './services/inspection-serialize.js';
