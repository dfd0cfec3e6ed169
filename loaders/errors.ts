// Typed load errors: every failure names the file and the reason, so the CLI can print one line.

export class LoadError extends Error {
  override name = 'LoadError';
  constructor(
    readonly file: string,
    readonly reason: string,
  ) {
    super(`${file}: ${reason}`);
  }
}

/** The file exists but its contents are not what its format promises (bad magic, lying sizes, …). */
export class FormatError extends LoadError {
  override name = 'FormatError';
}

/** The file or directory is missing or unreadable. */
export class NotFoundError extends LoadError {
  override name = 'NotFoundError';
}

export class SynthError extends LoadError {
  override name = 'SynthError';
}

export class GgufWriteError extends LoadError {
  override name = 'GgufWriteError';
}
