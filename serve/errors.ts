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
  constructor(readonly why: 'disconnect' | 'timeout' | 'shutdown') {
    super(why === 'timeout' ? 'request timed out' : why === 'shutdown' ? 'the server is shutting down' : 'client disconnected');
  }
}

/** What a client without the server's API key gets (OpenAI's shape and code). */
export function invalidApiKey(given: boolean): ApiError {
  return new ApiError(
    401,
    given ? 'Incorrect API key provided. Send the key the server was started with as "Authorization: Bearer <key>".' : 'You didn\'t provide an API key. Send it as "Authorization: Bearer <key>".',
    'invalid_request_error',
    'invalid_api_key',
  );
}

export function shuttingDown(): ApiError {
  return new ApiError(503, 'the server is shutting down; retry on another instance or after the restart', 'server_error', 'shutting_down');
}

export class ChatTemplateError extends Error {
  override name = 'ChatTemplateError';
}
