// Errors shared by every layer: the device refused or lost, a weight layout violated. Each layer above
// keeps its own error classes in its own errors.ts; these are the ones two or more layers throw or catch.

export class GpuUnavailableError extends Error {
  override name = 'GpuUnavailableError';
}

/** The device refused an allocation: too large for its limits, or out of memory (GpuOutOfMemoryError). */
export class GpuAllocationError extends Error {
  override name = 'GpuAllocationError';
}

export class GpuOutOfMemoryError extends GpuAllocationError {
  override name = 'GpuOutOfMemoryError';
}

/** The device is gone (destroyed, driver reset, GPU removed); everything on it must be re-created. */
export class GpuDeviceLostError extends Error {
  override name = 'GpuDeviceLostError';
  constructor(
    message: string,
    readonly reason: string,
  ) {
    super(message);
  }
}

export class W4LayoutError extends Error {
  override name = 'W4LayoutError';
}

export class W8LayoutError extends Error {
  override name = 'W8LayoutError';
}

/** A mistake in what the user asked for (an option, a name, an input file); the CLI prints it without a stack trace and exits 2. */
export class UsageError extends Error {
  override name = 'UsageError';
  constructor(message: string, readonly hint?: string) {
    super(message);
  }
}
