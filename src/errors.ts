/**
 * Every error vmwarden throws on purpose is a `VmwardenError` with a stable `code`, so callers can
 * branch on the kind of failure without parsing messages.
 */
export class VmwardenError extends Error {
	readonly code: string;

	constructor(code: string, message: string, options?: ErrorOptions) {
		super(message, options);
		this.name = new.target.name;
		this.code = code;
	}
}

/** A `VmConfig` (or an option) that vmwarden refuses before anything is spawned. */
export class InvalidConfigError extends VmwardenError {
	/** The offending field, as a path into the config: `memoryMib`, `disks[1].image`. */
	readonly field: string;
	/** Why the field was refused, without the field name. */
	readonly reason: string;

	constructor(field: string, reason: string, options?: ErrorOptions) {
		super('INVALID_CONFIG', `Invalid VM config: ${field}: ${reason}`, options);
		this.field = field;
		this.reason = reason;
	}
}
