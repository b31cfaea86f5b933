import type { FileHandle } from 'node:fs/promises';

/**
 * A file handed to crosvm. A path is opened by vmwarden (and closed by it); an open descriptor or a
 * `FileHandle` stays the caller's: vmwarden only lets crosvm inherit it.
 */
export type FileSource = string | number | FileHandle;

/** A disk image: read-only unless `writable`. */
export interface DiskConfig {
	image: FileSource;
	writable: boolean;
}

/**
 * What to run: the reference's `CrosvmConfig` without the CID (the supervisor allocates it).
 * Exactly one of `bootloader` and `kernel` is required.
 */
export interface VmConfig {
	/** A bootloader (crosvm `--bios`); excludes `kernel` and `initrd`. */
	bootloader?: FileSource;
	/** The guest kernel image. */
	kernel?: FileSource;
	/** An initial ramdisk for `kernel`. */
	initrd?: FileSource;
	/** Block devices, in guest order. */
	disks?: DiskConfig[];
	/** Extra kernel command line. */
	params?: string;
	/** Run as a protected VM (`--protected-vm`). */
	protected?: boolean;
	/** Guest memory in MiB: a positive integer. */
	memoryMib?: number;
	/** Number of vCPUs: a positive integer. */
	cpus?: number;
	/** crosvm's `--cpu-affinity` value: `0,1-3` or `0=0:1=1-2`. */
	cpuAffinity?: string;
	/** Android task profiles applied to crosvm's threads. */
	taskProfiles?: string[];
	/** Where the guest console goes (opened append-create when a path). Discarded when absent. */
	consoleOutput?: FileSource;
	/** Where the guest log goes (opened append-create when a path). Discarded when absent. */
	logOutput?: FileSource;
	/** Files crosvm inherits without naming them on its command line. */
	indirectFiles?: FileSource[];
	/** A semver range that vmwarden's platform version must satisfy. Default `*`. */
	platformVersion?: string;
	/** Kill the VM when the payload has not started within the boot hang-up timeout. */
	detectHangup?: boolean;
	/**
	 * Give the guest a memory balloon. QEMU gets a `virtio-balloon-pci` device only when true; crosvm
	 * always has one (vmwarden never passes `--no-balloon`). See docs/operations.md.
	 */
	balloon?: boolean;
	/**
	 * Have vmwarden read the guest's console and/or log on their way to `consoleOutput`/`logOutput`
	 * (`vm.console$`, `vm.log$`, `death.consoleTail`). Each costs the host one descriptor and a
	 * bounded buffer while the VM runs: docs/operations.md. Default: neither.
	 */
	capture?: CaptureConfig;
}

/** Which of a VM's outputs vmwarden reads as they are written. */
export interface CaptureConfig {
	console?: boolean;
	log?: boolean;
}

/** The crosvm platform version vmwarden implements (the reference's `CROSVM_PLATFORM_VERSION`). */
export const PLATFORM_VERSION = '1.0.0';
