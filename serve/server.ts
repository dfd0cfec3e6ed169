// The OpenAI-compatible HTTP server on Node's built-in `http`: routes, bounded bodies, per-request
// timeouts, cancellation on disconnect, an optional API key on /v1/* (and /tokenize, /detokenize),
// graceful shutdown (shutdown(): drain, then end what is left with a final chunk), and response formatting. Generation itself is in
// serve/generation.ts; the model behind it is any GenerationEngine.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID, timingSafeEqual, createHash } from 'node:crypto';
import { ApiError, toApiError, ChatTemplateError, RequestAborted, invalidApiKey, invalidParam, shuttingDown } from './errors.js';
import type { GenerationEngine } from './engine.js';
import { ServerMetrics } from './metrics.js';
import { FifoScheduler } from './scheduler.js';
import { SseStream } from './sse.js';
import { fallbackChatTemplate, type ChatTemplate } from './chat-template.js';
import {
  parseChatRequest, parseCompletionRequest, parseJsonBody, type ChatRequest, type CompletionRequest,
} from './validate.js';
import { runGeneration, timeoutError, type GenerationOutcome, type LogprobEntry } from './generation.js';

export interface ServerOptions {
  engine: GenerationEngine;
  chatTemplate?: ChatTemplate;
  /** Loopback by default: exposing the server is an explicit choice. */
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** Requests allowed to wait behind the running one; more get 429. */
  maxQueue?: number;
  /** Larger request bodies get 413. */
  maxBodyBytes?: number;
  /** A request (queue wait included) still unfinished after this gets 504 / an error event. */
  requestTimeoutMs?: number;
  /** max_tokens when a request gives none (also capped by the context left). */
  defaultMaxTokens?: number;
  /** One line per request (method, path, status, ms); off by default. */
  log?: (line: string) => void;
  /** When set, /v1/*, /tokenize and /detokenize need `Authorization: Bearer <apiKey>` (else 401); /health and /metrics stay open. */
  apiKey?: string;
}

export interface RunningServer {
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly metrics: ServerMetrics;
  readonly http: Server;
  /** Stops accepting connections, aborts running generations and waits for the socket to close. */
  close(): Promise<void>;
  /**
   * Graceful stop: refuses new connections and requests (503), lets running generations finish for
   * up to `graceMs`, then ends the rest where they are (a final chunk with finish_reason 'length'
   * and [DONE] for streams, the text so far otherwise), and closes. Resolves when all is answered.
   */
  shutdown(graceMs: number): Promise<void>;
}

const DEFAULTS = { host: '127.0.0.1', port: 8080, maxQueue: 64, maxBodyBytes: 1 << 20, requestTimeoutMs: 300_000, defaultMaxTokens: 256 };

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function sendError(res: ServerResponse, err: ApiError): void {
  const headers: Record<string, string> = err.status === 429 || err.status === 503 ? { 'retry-after': '1' } : {};
  // A 413 leaves the rest of the body unread; closing the connection is the only clean way out.
  if (err.status === 413) headers.connection = 'close';
  sendJson(res, err.status, err.toJSON(), headers);
}

/** Reads the body up to `limit` bytes; a longer one is a 413 (checked on Content-Length first). */
function readBody(req: IncomingMessage, limit: number): Promise<string> {
  const tooLarge = () => new ApiError(413, `request body exceeds the server's limit of ${limit} bytes`, 'invalid_request_error', 'request_too_large');
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) return Promise.reject(tooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on('data', (chunk: Buffer) => {
      if (failed) return;
      size += chunk.length;
      if (size > limit) {
        failed = true;
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (!failed) resolve(Buffer.concat(chunks).toString('utf8'));
    });
    req.on('error', (err) => {
      if (!failed) reject(err);
      failed = true;
    });
    // A client that goes away mid-body: nothing will answer, but the handler must not hang.
    req.on('close', () => {
      if (!req.complete && !failed) {
        failed = true;
        reject(new RequestAborted('disconnect'));
      }
    });
  });
}

function openAiLogprobsForCompletion(entries: LogprobEntry[]) {
  return {
    tokens: entries.map((e) => e.token),
    token_logprobs: entries.map((e) => e.logprob),
    top_logprobs: entries.map((e) => Object.fromEntries(e.top.map((a) => [a.token, a.logprob]))),
    text_offset: entries.map((e) => e.offset),
  };
}

function openAiLogprobsForChat(entries: LogprobEntry[]) {
  const bytes = (s: string) => [...Buffer.from(s, 'utf8')];
  return {
    content: entries.map((e) => ({
      token: e.token,
      logprob: e.logprob,
      bytes: bytes(e.token),
      top_logprobs: e.top.map((a) => ({ token: a.token, logprob: a.logprob, bytes: bytes(a.token) })),
    })),
    refusal: null,
  };
}

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const opts = {
    host: options.host ?? DEFAULTS.host,
    port: options.port ?? DEFAULTS.port,
    maxQueue: options.maxQueue ?? DEFAULTS.maxQueue,
    maxBodyBytes: options.maxBodyBytes ?? DEFAULTS.maxBodyBytes,
    requestTimeoutMs: options.requestTimeoutMs ?? DEFAULTS.requestTimeoutMs,
    defaultMaxTokens: options.defaultMaxTokens ?? DEFAULTS.defaultMaxTokens,
    log: options.log,
  };
  const engine = options.engine;
  const chatTemplate = options.chatTemplate ?? fallbackChatTemplate();
  const metrics = new ServerMetrics();
  const scheduler = new FifoScheduler(opts.maxQueue, (waiting, running) => {
    metrics.queueDepth.set(waiting);
    metrics.running.set(running);
  }, engine.parallel ?? 1);
  metrics.slots.set(engine.parallel ?? 1);
  engine.observeSteps?.((step) => {
    metrics.slotsBusy.set(step.busySlots);
    metrics.stepRows.observe(step.rows);
    if (step.decodeRows) metrics.stepDecodeRows.inc({ kind: 'decode' }, step.decodeRows);
    if (step.prefillRows) metrics.stepDecodeRows.inc({ kind: 'prefill' }, step.prefillRows);
  });
  // Compared as digests so the comparison takes the same time whatever the client sent.
  const keyDigest = options.apiKey ? createHash('sha256').update(options.apiKey).digest() : undefined;
  const checkApiKey = (req: IncomingMessage) => {
    if (!keyDigest) return;
    const header = req.headers.authorization;
    const m = typeof header === 'string' ? /^Bearer\s+(.+)$/i.exec(header.trim()) : null;
    if (!m || !timingSafeEqual(createHash('sha256').update(m[1]!).digest(), keyDigest)) throw invalidApiKey(!!m);
  };
  let draining = false;
  let stopping: Promise<void> | undefined;
  let endGrace: () => void = () => {};
  /** Generation handlers still running, and who waits for them all to end. */
  let inflight = 0;
  const idleWaiters: Array<() => void> = [];
  const settled = () => {
    if (inflight === 0) for (const w of idleWaiters.splice(0)) w();
  };
  const ctx = { engine, scheduler, metrics };
  const created = () => Math.floor(Date.now() / 1000);
  const active = new Set<AbortController>();
  const chatStopTokens = chatTemplate.stopTokens(engine.tokenizer);
  const modelObject = () => ({ id: engine.modelId, object: 'model', created: 0, owned_by: 'aser', context_length: engine.contextLength });

  function checkModel(model: string): void {
    // The model field is compared with the served id only; it never names a file.
    if (model !== engine.modelId) {
      throw new ApiError(404, `model '${model}' is not served here; available: ${engine.modelId}`, 'not_found_error', 'model_not_found', 'model');
    }
  }

  function promptTokens(req: CompletionRequest | ChatRequest): { ids: number[]; stop: string[]; stopTokens: readonly number[] } {
    const tok = engine.tokenizer;
    if (req.kind === 'chat') {
      let rendered: string;
      try {
        rendered = chatTemplate.render(req.messages, true);
      } catch (err) {
        if (err instanceof ChatTemplateError) throw new ApiError(400, err.message, 'invalid_request_error', 'invalid_messages', 'messages');
        throw err;
      }
      return { ids: chatTemplate.encode(tok, rendered), stop: [...req.stop, ...chatTemplate.stop], stopTokens: chatStopTokens };
    }
    if (typeof req.prompt === 'string') return { ids: tok.encode(req.prompt, { bos: true }), stop: req.stop, stopTokens: [tok.eosId] };
    const bad = req.prompt.find((id) => id < 0 || id >= tok.vocabSize);
    if (bad !== undefined) throw new ApiError(400, `prompt token id ${bad} is outside the vocabulary (0..${tok.vocabSize - 1})`, 'invalid_request_error', 'invalid_value', 'prompt');
    return { ids: req.prompt, stop: req.stop, stopTokens: [tok.eosId] };
  }

  async function handleGeneration(req: IncomingMessage, res: ServerResponse, kind: 'completion' | 'chat'): Promise<number> {
    inflight++;
    try {
      return await generation(req, res, kind);
    } finally {
      inflight--;
      settled();
    }
  }

  async function generation(req: IncomingMessage, res: ServerResponse, kind: 'completion' | 'chat'): Promise<number> {
    const arrivedAt = performance.now();
    const body = parseJsonBody(await readBody(req, opts.maxBodyBytes));
    const request = kind === 'chat' ? parseChatRequest(body) : parseCompletionRequest(body);
    checkModel(request.model);
    const prompt = promptTokens(request);
    const room = engine.contextLength - prompt.ids.length;
    if (prompt.ids.length === 0) throw new ApiError(400, 'the prompt encodes to no tokens', 'invalid_request_error', 'invalid_value', kind === 'chat' ? 'messages' : 'prompt');
    if (room < 1) {
      throw new ApiError(400, `the prompt is ${prompt.ids.length} tokens; this model's context is ${engine.contextLength} tokens, leaving no room to generate`, 'invalid_request_error', 'context_length_exceeded', kind === 'chat' ? 'messages' : 'prompt');
    }
    // max_tokens beyond the context left is clamped (finish_reason 'length' says so), not refused.
    const maxTokens = Math.min(request.maxTokens ?? opts.defaultMaxTokens, room);
    metrics.promptTokens.inc({}, prompt.ids.length);

    const controller = new AbortController();
    active.add(controller);
    const onClose = () => {
      if (!res.writableFinished) controller.abort(new RequestAborted('disconnect'));
    };
    res.on('close', onClose);
    const timer = setTimeout(() => controller.abort(new RequestAborted('timeout')), opts.requestTimeoutMs);
    timer.unref();

    const id = `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${randomUUID().replace(/-/g, '')}`;
    const createdAt = created();
    const object = kind === 'chat' ? 'chat.completion' : 'text_completion';
    const stream = request.stream ? new SseStream(res) : undefined;
    const chunkObject = kind === 'chat' ? 'chat.completion.chunk' : 'text_completion';
    const chunk = (choice: Record<string, unknown>) => ({ id, object: chunkObject, created: createdAt, model: engine.modelId, choices: [{ index: 0, ...choice }] });

    let outcome: GenerationOutcome;
    try {
      const pending = runGeneration(ctx, {
        prompt: prompt.ids, maxTokens, temperature: request.temperature, topP: request.topP, extra: request.extra, seed: request.seed,
        stop: prompt.stop, stopTokens: prompt.stopTokens, logprobs: request.logprobs, topLogprobs: request.topLogprobs,
        signal: controller.signal, arrivedAt, trimStart: kind === 'chat', deviceEpoch: engine.deviceEpoch,
        onChunk: stream
          ? (text, lp) => {
              if (kind === 'chat') stream.send(chunk({ delta: { content: text }, logprobs: request.logprobs ? openAiLogprobsForChat(lp) : null, finish_reason: null }));
              else stream.send(chunk({ text, logprobs: request.logprobs ? openAiLogprobsForCompletion(lp) : null, finish_reason: null }));
            }
          : undefined,
      });
      // Accepted into the queue: a streaming client sees the stream open (and the role) right away.
      if (stream && kind === 'chat') stream.send(chunk({ delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }));
      else stream?.open();
      outcome = await pending;
    } catch (err) {
      const reason = err instanceof RequestAborted ? err : controller.signal.reason instanceof RequestAborted ? controller.signal.reason : undefined;
      if (reason) metrics.cancelled.inc({ reason: reason.why });
      if (reason?.why === 'shutdown' && stream?.isOpen) {
        // Still queued when the grace period ran out: the stream ends cleanly with nothing generated.
        if (kind === 'chat') stream.send(chunk({ delta: {}, logprobs: null, finish_reason: 'length' }));
        else stream.send(chunk({ text: '', logprobs: null, finish_reason: 'length' }));
        stream.close();
        return 200;
      }
      const apiErr = reason?.why === 'timeout' ? timeoutError(opts.requestTimeoutMs) : reason?.why === 'shutdown' ? shuttingDown() : toApiError(err);
      if (reason?.why === 'disconnect') return 499; // nobody is listening; nginx's "client closed request"
      if (stream?.isOpen) {
        stream.send(apiErr.toJSON());
        stream.close();
        return apiErr.status;
      }
      throw apiErr;
    } finally {
      clearTimeout(timer);
      res.off('close', onClose);
      active.delete(controller);
    }
    metrics.requestDuration.observe((performance.now() - arrivedAt) / 1000);
    const usage = { prompt_tokens: outcome.promptTokens, completion_tokens: outcome.completionTokens, total_tokens: outcome.promptTokens + outcome.completionTokens };

    if (stream) {
      if (kind === 'chat') stream.send(chunk({ delta: {}, logprobs: null, finish_reason: outcome.finishReason }));
      else stream.send(chunk({ text: '', logprobs: null, finish_reason: outcome.finishReason }));
      if (request.includeUsage) stream.send({ id, object: chunkObject, created: createdAt, model: engine.modelId, choices: [], usage });
      stream.close();
      return 200;
    }
    const choice =
      kind === 'chat'
        ? { index: 0, message: { role: 'assistant', content: outcome.text, refusal: null }, logprobs: request.logprobs ? openAiLogprobsForChat(outcome.logprobs) : null, finish_reason: outcome.finishReason }
        : { index: 0, text: outcome.text, logprobs: request.logprobs ? openAiLogprobsForCompletion(outcome.logprobs) : null, finish_reason: outcome.finishReason };
    sendJson(res, 200, { id, object, created: createdAt, model: engine.modelId, choices: [choice], usage, system_fingerprint: null });
    return 200;
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<{ route: string; status: number }> {
    const path = (req.url ?? '/').split('?')[0]!;
    const method = req.method ?? 'GET';
    const allow = (methods: string[]) => {
      if (!methods.includes(method)) throw new ApiError(405, `${method} is not allowed on ${path} (use ${methods.join(', ')})`, 'invalid_request_error', 'method_not_allowed');
    };
    const protectedPath = path.startsWith('/v1/') || path === '/tokenize' || path === '/detokenize';
    if (protectedPath) checkApiKey(req);
    switch (path) {
      case '/health':
        allow(['GET']);
        sendJson(res, 200, {
          status: draining ? 'shutting_down' : 'ok', model: engine.modelId, queue_depth: scheduler.waitingCount, running: scheduler.runningCount,
          slots: engine.parallel ?? 1, chat_template: chatTemplate.origin,
        });
        return { route: path, status: 200 };
      case '/metrics':
        allow(['GET']);
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
        res.end(metrics.render());
        return { route: path, status: 200 };
      case '/v1/models':
        allow(['GET']);
        sendJson(res, 200, { object: 'list', data: [modelObject()] });
        return { route: path, status: 200 };
      case '/v1/completions':
        allow(['POST']);
        if (draining) throw shuttingDown();
        return { route: path, status: await handleGeneration(req, res, 'completion') };
      case '/v1/chat/completions':
        allow(['POST']);
        if (draining) throw shuttingDown();
        return { route: path, status: await handleGeneration(req, res, 'chat') };
      case '/tokenize': {
        // llama-server's shape: { content, add_special?, with_pieces? } → { tokens: [id | { id, piece }] }.
        allow(['POST']);
        const body = parseJsonBody(await readBody(req, opts.maxBodyBytes));
        if (typeof body.content !== 'string') throw invalidParam('content', "'content' must be a string", body.content === undefined ? 'missing_required_parameter' : 'invalid_type');
        for (const key of ['add_special', 'with_pieces']) {
          if (body[key] !== undefined && typeof body[key] !== 'boolean') throw invalidParam(key, `'${key}' must be a boolean`, 'invalid_type');
        }
        const tok = engine.tokenizer;
        const ids = tok.encode(body.content, { bos: body.add_special === true });
        const tokens = body.with_pieces === true ? ids.map((id) => ({ id, piece: tok.decode([id]) })) : ids;
        sendJson(res, 200, { tokens });
        return { route: path, status: 200 };
      }
      case '/detokenize': {
        allow(['POST']);
        const body = parseJsonBody(await readBody(req, opts.maxBodyBytes));
        const tok = engine.tokenizer;
        const ids = body.tokens;
        if (!Array.isArray(ids) || !ids.every((t) => Number.isInteger(t) && t >= 0 && t < tok.vocabSize)) {
          throw invalidParam('tokens', `'tokens' must be an array of token ids in 0..${tok.vocabSize - 1}`, ids === undefined ? 'missing_required_parameter' : 'invalid_value');
        }
        sendJson(res, 200, { content: tok.decode(ids as number[]) });
        return { route: path, status: 200 };
      }
      default:
        if (path.startsWith('/v1/models/')) {
          allow(['GET']);
          let name: string;
          try {
            name = decodeURIComponent(path.slice('/v1/models/'.length));
          } catch {
            throw new ApiError(400, 'malformed model id in the path', 'invalid_request_error', 'invalid_value');
          }
          checkModel(name);
          sendJson(res, 200, modelObject());
          return { route: '/v1/models/:id', status: 200 };
        }
        throw new ApiError(404, `no route for ${method} ${path}`, 'not_found_error', 'unknown_route');
    }
  }

  const http = createServer((req, res) => {
    const started = performance.now();
    // While draining, each answer closes its connection so keep-alive clients go elsewhere.
    if (draining) res.setHeader('connection', 'close');
    route(req, res)
      .catch((err: unknown) => {
        if (err instanceof RequestAborted) return { route: knownRoute(req.url), status: 499 };
        const apiErr = toApiError(err);
        sendError(res, apiErr);
        return { route: knownRoute(req.url), status: apiErr.status };
      })
      .then(({ route: r, status }) => {
        metrics.requests.inc({ route: r, code: String(status) });
        opts.log?.(`${req.method} ${req.url} ${status} ${(performance.now() - started).toFixed(0)}ms`);
      });
  });
  // Node bounds the time to receive a request (headers and body) with this; generation is bounded
  // separately by the per-request timer.
  http.requestTimeout = opts.requestTimeoutMs;

  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(opts.port, opts.host, () => {
      http.off('error', reject);
      resolve();
    });
  });
  const address = http.address() as AddressInfo;
  const urlHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${urlHost}:${address.port}`,
    host: address.address,
    port: address.port,
    metrics,
    http,
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of active) c.abort(new RequestAborted('disconnect'));
        http.close(() => resolve());
        http.closeAllConnections();
      }),
    shutdown: (graceMs: number) => {
      // A second call (a second signal) with no grace ends the grace period now.
      if (stopping) {
        if (graceMs <= 0) endGrace();
        return stopping;
      }
      stopping = (async () => {
        draining = true;
        const closed = new Promise<void>((resolve) => http.close(() => resolve()));
        http.closeIdleConnections();
        const idle = new Promise<void>((resolve) => {
          idleWaiters.push(resolve);
          settled();
        });
        let timer: NodeJS.Timeout | undefined;
        const graceOver = new Promise<'grace'>((resolve) => {
          endGrace = () => resolve('grace');
          timer = setTimeout(endGrace, Math.max(0, graceMs));
        });
        if ((await Promise.race([idle, graceOver])) === 'grace') {
          for (const c of active) c.abort(new RequestAborted('shutdown'));
          await idle;
        }
        clearTimeout(timer);
        // Every answer is written; what remains are idle keep-alive sockets.
        http.closeAllConnections();
        await closed;
      })();
      return stopping;
    },
  };
}

/** Route label for metrics without echoing arbitrary client paths (bounded label cardinality). */
function knownRoute(url: string | undefined): string {
  const path = (url ?? '/').split('?')[0]!;
  if (['/health', '/metrics', '/v1/models', '/v1/completions', '/v1/chat/completions', '/tokenize', '/detokenize'].includes(path)) return path;
  return path.startsWith('/v1/models/') ? '/v1/models/:id' : 'other';
}
