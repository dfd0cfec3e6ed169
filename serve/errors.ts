// OpenAI-style API errors: every failure the server reports is one of these, rendered as
// `{ error: { message, type, param, code } }` with its HTTP status.

export type ApiErrorType = 'invalid_request_error' | 'not_found_error' | 'rate_limit_error' | 'timeout_error' | 'server_error';

export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly status: number,
    message: string,
    readonly type: ApiErrorType,
    readonly code: string | null = null,
    readonly param: string | null = null,
  ) {
    super(message);
  }

  toJSON(): { error: { message: string; type: ApiErrorType; param: string | null; code: string | null } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/** A field of the request body is missing, has the wrong type, or is out of range (400). */
export function invalidParam(param: string, message: string, code = 'invalid_value'): ApiError {
  return new ApiError(400, message, 'invalid_request_error', code, param);
}

/** Any thrown value as an ApiError; unknown failures become a 500 that does not leak a stack. */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  const message = err instanceof Error ? `${err.name === 'Error' ? '' : err.name + ': '}${err.message}` : String(err);
  return new ApiError(500, `internal error: ${message.split('\n')[0]}`, 'server_error', 'internal_error');
}

/** Why a request's signal was aborted; the abort reason carries one of these. */
export class RequestAborted extends Error {
  override name = 'RequestAborted';
  constructor(readonly why: 'disconnect' | 'timeout') {
    super(why === 'timeout' ? 'request timed out' : 'client disconnected');
  }
}

export class ChatTemplateError extends Error {
  override name = 'ChatTemplateError';
}
