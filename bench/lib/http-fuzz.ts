// HTTP fuzzing of the OpenAI-compatible server (shared by test/fuzz/http.fuzz.test.ts and
// `npm run bench -- fuzz`): generated and mutated requests (routes, methods, content types, bodies
// that are valid requests with fields replaced, arbitrary JSON, text and bytes) sent to a real server
// over loopback. A case passes when the answer is a well-formed success (JSON, or an SSE stream that
// ends with [DONE] and a finish_reason) or a 4xx with an OpenAI error object, within the time bound.
// A 5xx, a malformed answer, a dropped connection or a timeout is a failure.
import fc from 'fast-check';

export interface HttpCase {
  method: string;
  path: string;
  contentType: string | null;
  body: { kind: 'json'; value: unknown } | { kind: 'text'; value: string } | { kind: 'bytes'; value: Uint8Array } | { kind: 'none' };
}

export interface HttpOutcome {
  outcome: string;
  failure?: string;
  ms: number;
}

const MODEL_PLACEHOLDER = '$MODEL';

const nasty: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(-1, 0, 1, 2, 2 ** 31, 2 ** 53, 1e308, 0.5, -0.5, null, true, false, '', 'x', '../../etc/passwd', '/etc/passwd', 'file:///etc/passwd', '__proto__', [], {}, [1, 2], ['a'], [{}], 'x'.repeat(2000)),
  fc.integer(),
  fc.double(),
  fc.string({ maxLength: 12 }),
  fc.jsonValue({ maxDepth: 2 }),
);

const completion = fc.record({
  model: fc.constant(MODEL_PLACEHOLDER),
  prompt: fc.oneof(fc.constantFrom('Once upon a time', '', ' ', '\u0000', 'Lily'), fc.string({ maxLength: 40 }), fc.array(fc.integer({ min: 0, max: 511 }), { minLength: 1, maxLength: 8 })),
  max_tokens: fc.integer({ min: 1, max: 4 }),
  temperature: fc.constantFrom(0, 0.7, 1),
  stream: fc.boolean(),
}, { requiredKeys: ['model', 'prompt'] });

const chat = fc.record({
  model: fc.constant(MODEL_PLACEHOLDER),
  messages: fc.array(fc.record({ role: fc.constantFrom('user', 'system', 'assistant'), content: fc.oneof(fc.constant('hi'), fc.string({ maxLength: 20 })) }), { minLength: 1, maxLength: 3 }),
  max_tokens: fc.integer({ min: 1, max: 4 }),
  stream: fc.boolean(),
  stop: fc.option(fc.oneof(fc.string({ maxLength: 3 }), fc.array(fc.string({ maxLength: 3 }), { maxLength: 4 })), { nil: undefined }),
}, { requiredKeys: ['model', 'messages'] });

/** Replaces, deletes or adds fields (one level or inside messages) of a valid request. */
const edited = (base: fc.Arbitrary<Record<string, unknown>>) =>
  fc.tuple(base, fc.array(fc.tuple(fc.constantFrom('model', 'prompt', 'messages', 'max_tokens', 'temperature', 'top_p', 'stream', 'stop', 'logprobs', 'top_logprobs', 'seed', 'n', 'stream_options', 'messages.0.role', 'messages.0.content', '__proto__'), fc.option(nasty, { nil: undefined })), { minLength: 1, maxLength: 3 }))
    .map(([req, edits]) => {
      const out = JSON.parse(JSON.stringify(req)) as Record<string, unknown>;
      for (const [path, value] of edits) {
        const parts = path.split('.');
        let node: any = out;
        for (const p of parts.slice(0, -1)) node = node && typeof node === 'object' ? node[p] : undefined;
        if (!node || typeof node !== 'object') continue;
        const last = parts[parts.length - 1]!;
        // Generation cost stays bounded: a valid max_tokens beyond 8 is not generated.
        if (last === 'max_tokens' && typeof value === 'number' && value > 8) continue;
        if (value === undefined) delete node[last];
        else node[last] = value;
      }
      return out;
    });

export const httpCase: fc.Arbitrary<HttpCase> = fc.oneof(
  { weight: 6, arbitrary: fc.record({
    method: fc.constant('POST'),
    path: fc.constantFrom('/v1/completions', '/v1/chat/completions'),
    contentType: fc.constantFrom('application/json', 'application/json', 'text/plain', null),
    body: fc.oneof(
      { weight: 3, arbitrary: edited(completion as fc.Arbitrary<Record<string, unknown>>).map((value) => ({ kind: 'json' as const, value })) },
      { weight: 3, arbitrary: edited(chat as fc.Arbitrary<Record<string, unknown>>).map((value) => ({ kind: 'json' as const, value })) },
      { weight: 1, arbitrary: fc.oneof(completion, chat).map((value) => ({ kind: 'json' as const, value })) },
      { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((value) => ({ kind: 'json' as const, value })) },
      { weight: 1, arbitrary: fc.oneof(fc.string({ maxLength: 64 }), fc.constantFrom('{', '{"model":', '[', 'null', '{"model":"$MODEL","prompt":"a"', '\uFEFF{}')).map((value) => ({ kind: 'text' as const, value })) },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((value) => ({ kind: 'bytes' as const, value })) },
    ),
  }) },
  { weight: 1, arbitrary: fc.record({
    method: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD'),
    path: fc.oneof(
      fc.constantFrom('/health', '/metrics', '/v1/models', '/v1/models/$MODEL', '/v1/models/..%2F..%2Fetc%2Fpasswd', '/v1/models/%2Fetc%2Fpasswd', '/v1/models/%', '/v1/models/%E0%A4%A', '/', '/v1', '/v1/completions?x=1', '//etc/passwd'),
      fc.string({ maxLength: 16 }).map((s) => `/v1/models/${encodeURIComponent(s)}`),
      fc.webPath(),
    ),
    contentType: fc.constant(null),
    body: fc.constant({ kind: 'none' as const }),
  }) },
);

function resolveModel<T>(value: T, model: string): T {
  return JSON.parse(JSON.stringify(value).split(MODEL_PLACEHOLDER).join(model)) as T;
}

function isErrorObject(x: unknown): boolean {
  const e = (x as { error?: Record<string, unknown> } | null)?.error;
  return !!e && typeof e.message === 'string' && typeof e.type === 'string' && 'param' in e && 'code' in e;
}

/** Checks an SSE body: every event JSON (or [DONE] last), a finish_reason seen, no error event. */
function checkSse(text: string): string | undefined {
  const events = text.split('\n\n').filter((b) => b.trim() !== '').map((b) => b.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n'));
  if (events.at(-1) !== '[DONE]') return 'stream does not end with [DONE]';
  let finish = false;
  for (const ev of events.slice(0, -1)) {
    let obj: any;
    try {
      obj = JSON.parse(ev);
    } catch {
      return `stream event is not JSON: ${ev.slice(0, 60)}`;
    }
    if (obj.error) return `stream carried an error: ${JSON.stringify(obj.error).slice(0, 120)}`;
    if (obj.choices?.some((c: any) => typeof c.finish_reason === 'string')) finish = true;
  }
  return finish ? undefined : 'stream has no finish_reason';
}

/** Sends one case to `baseUrl` and classifies the answer. */
export async function runHttpCase(baseUrl: string, model: string, c: HttpCase, boundMs = 15_000): Promise<HttpOutcome> {
  const t0 = performance.now();
  const path = c.path.split(MODEL_PLACEHOLDER).join(encodeURIComponent(model));
  const headers: Record<string, string> = {};
  if (c.contentType) headers['content-type'] = c.contentType;
  let body: string | Uint8Array | undefined;
  if (c.body.kind === 'json') body = JSON.stringify(resolveModel(c.body.value, model)) ?? 'null';
  else if (c.body.kind === 'text') body = c.body.value.split(MODEL_PLACEHOLDER).join(model);
  else if (c.body.kind === 'bytes') body = c.body.value;
  const done = (outcome: string, failure?: string): HttpOutcome => ({ outcome, failure, ms: performance.now() - t0 });
  let res: Response;
  let text: string;
  try {
    res = await fetch(`${baseUrl}${path.startsWith('/') ? '' : '/'}${path}`, { method: c.method, headers, body: c.method === 'GET' || c.method === 'HEAD' ? undefined : body, signal: AbortSignal.timeout(boundMs) });
    text = await res.text();
  } catch (err) {
    return done('no-answer', `${c.method} ${path}: ${(err as Error).name}: ${(err as Error).message}`);
  }
  const status = res.status;
  const type = res.headers.get('content-type') ?? '';
  if (status >= 500) return done(String(status), `${c.method} ${path} answered ${status}: ${text.slice(0, 200)}`);
  if (c.method === 'HEAD') return done(`${status}:head`);
  if (status >= 400) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return done(String(status), `${status} body is not JSON: ${text.slice(0, 80)}`);
    }
    if (!isErrorObject(parsed)) return done(String(status), `${status} body is not an OpenAI error object: ${text.slice(0, 120)}`);
    return done(`${status}:${(parsed as { error: { code: string } }).error.code}`);
  }
  if (type.startsWith('text/event-stream')) {
    const bad = checkSse(text);
    return done('200:stream', bad && `${c.method} ${path}: ${bad}`);
  }
  if (type.startsWith('text/plain')) return done('200:text'); // /metrics
  try {
    const obj = JSON.parse(text) as { choices?: Array<{ finish_reason?: unknown }> };
    if (c.path.includes('completions') && !(obj.choices?.[0] && typeof obj.choices[0].finish_reason === 'string')) {
      return done('200', `completion without choices/finish_reason: ${text.slice(0, 120)}`);
    }
  } catch {
    return done('200', `200 body is not JSON: ${text.slice(0, 80)}`);
  }
  return done('200');
}
