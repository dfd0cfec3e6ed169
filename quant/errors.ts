// The quantizer layer's error classes (linear algebra, calibration, quantization), in one place.

export class LinalgError extends Error {
  override name = 'LinalgError';
  constructor(
    message: string,
    readonly routine?: string,
    readonly info?: number,
  ) {
    super(message);
  }
}

/** Cholesky failed: the leading minor of order `minor` (1-based) is not positive definite. */
export class NotPositiveDefiniteError extends LinalgError {
  override name = 'NotPositiveDefiniteError';
  constructor(
    readonly order: number,
    readonly minor: number,
  ) {
    super(`cholesky: matrix of order ${order} is not positive definite (leading minor ${minor} fails)`, 'dpotrf', minor);
  }
}

export class CalibrationError extends Error {
  override name = 'CalibrationError';
}

export class QuantizeError extends Error {
  override name = 'QuantizeError';
}
