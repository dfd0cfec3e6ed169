// The evaluation layer's error classes, in one place.

export class PerplexityError extends Error {
  override name = 'PerplexityError';
}

export class PplTableError extends Error {
  override name = 'PplTableError';
}
