// Request bodies of /v1/completions and /v1/chat/completions → checked, normalized parameters.
// Every rejection is a 400 naming the offending field; unknown fields are ignored (as OpenAI does),
// but known ones this server cannot honour (n > 1, echo, logit_bias, tools) are refused rather than
// silently dropped. Beside OpenAI's fields, llama-server's sampling fields are taken: top_k, min_p,
// repeat_penalty, repeat_last_n.
import { ApiError, invalidParam } from './errors.js';
import type { GenerateParams } from './engine.js';
import type { ChatMessage } from './chat-template.js';

export interface SamplingRequest {
  model: string;
  stream: boolean;
  includeUsage: boolean;
  /** undefined: until the context is full, capped by the server's default. */
  maxTokens?: number;
  temperature: number;
  topP: number;
  /** top_k, min_p, repeat_penalty/repeat_last_n, presence_penalty, frequency_penalty (absent = off). */
  extra: Pick<GenerateParams, 'topK' | 'minP' | 'repeatPenalty' | 'repeatLastN' | 'presencePenalty' | 'frequencyPenalty'>;
  seed?: number;
  stop: string[];
  /** Report logprobs; `topLogprobs` alternatives per token (0..20). */
  logprobs: boolean;
  topLogprobs: number;
}

export interface CompletionRequest extends SamplingRequest {
  kind: 'completion';
  /** A string, or token ids as OpenAI allows. */
  prompt: string | number[];
}

export interface ChatRequest extends SamplingRequest {
  kind: 'chat';
  messages: ChatMessage[];
}

type Body = Record<string, unknown>;

/** Parses a request body; anything but a JSON object is a 400. */
export function parseJsonBody(raw: string): Body {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (err) {
    throw new ApiError(400, `request body is not valid JSON: ${(err as Error).message}`, 'invalid_request_error', 'invalid_json');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ApiError(400, 'request body must be a JSON object', 'invalid_request_error', 'invalid_json');
  }
  return value as Body;
}

const typeName = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);

function optionalNumber(body: Body, key: string, min: number, max: number, integer = false): number | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw invalidParam(key, `'${key}' must be a number, got ${typeName(v)}`, 'invalid_type');
  if (integer && !Number.isInteger(v)) throw invalidParam(key, `'${key}' must be an integer, got ${v}`, 'invalid_type');
  if (v < min || v > max) throw invalidParam(key, `'${key}' must be between ${min} and ${max}, got ${v}`);
  return v;
}

function optionalBoolean(body: Body, key: string): boolean | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw invalidParam(key, `'${key}' must be a boolean, got ${typeName(v)}`, 'invalid_type');
  return v;
}

function requireModel(body: Body): string {
  const v = body.model;
  if (v === undefined) throw invalidParam('model', "'model' is required (see GET /v1/models)", 'missing_required_parameter');
  if (typeof v !== 'string' || v.length === 0) throw invalidParam('model', `'model' must be a non-empty string, got ${typeName(v)}`, 'invalid_type');
  return v;
}

function parseStop(body: Body): string[] {
  const v = body.stop;
  if (v === undefined || v === null) return [];
  const list = typeof v === 'string' ? [v] : v;
  if (!Array.isArray(list) || !list.every((s) => typeof s === 'string')) {
    throw invalidParam('stop', `'stop' must be a string or an array of strings, got ${typeName(v)}`, 'invalid_type');
  }
  if (list.length > 4) throw invalidParam('stop', `'stop' takes at most 4 sequences, got ${list.length}`);
  if (list.some((s) => s.length === 0)) throw invalidParam('stop', "'stop' sequences must not be empty");
  return list as string[];
}

/** Fields OpenAI defines that change the output in ways this server does not implement. */
function refuseUnsupported(body: Body): void {
  const n = optionalNumber(body, 'n', 1, 128, true);
  if (n !== undefined && n !== 1) throw invalidParam('n', "only 'n': 1 is supported", 'unsupported_value');
  const bestOf = optionalNumber(body, 'best_of', 1, 20, true);
  if (bestOf !== undefined && bestOf !== 1) throw invalidParam('best_of', "only 'best_of': 1 is supported", 'unsupported_value');
  if (optionalBoolean(body, 'echo')) throw invalidParam('echo', "'echo' is not supported", 'unsupported_value');
  if (body.suffix !== undefined && body.suffix !== null) throw invalidParam('suffix', "'suffix' is not supported", 'unsupported_value');
  if (body.logit_bias !== undefined && body.logit_bias !== null && Object.keys(body.logit_bias as object).length > 0) {
    throw invalidParam('logit_bias', "'logit_bias' is not supported", 'unsupported_value');
  }
  for (const key of ['tools', 'functions']) {
    if (Array.isArray(body[key]) && (body[key] as unknown[]).length > 0) throw invalidParam(key, `'${key}' (tool calling) is not supported`, 'unsupported_value');
  }
  const format = body.response_format as { type?: unknown } | undefined;
  if (format && typeof format === 'object' && format.type !== undefined && format.type !== 'text') {
    throw invalidParam('response_format', "only response_format type 'text' is supported", 'unsupported_value');
  }
}

function parseSampling(body: Body, maxTokensKeys: string[]): Omit<SamplingRequest, 'logprobs' | 'topLogprobs'> {
  refuseUnsupported(body);
  let maxTokens: number | undefined;
  for (const key of maxTokensKeys) maxTokens ??= optionalNumber(body, key, 1, 1 << 24, true);
  const stream = optionalBoolean(body, 'stream') ?? false;
  const streamOptions = body.stream_options;
  let includeUsage = false;
  if (streamOptions !== undefined && streamOptions !== null) {
    if (typeof streamOptions !== 'object' || Array.isArray(streamOptions)) {
      throw invalidParam('stream_options', `'stream_options' must be an object, got ${typeName(streamOptions)}`, 'invalid_type');
    }
    includeUsage = optionalBoolean(streamOptions as Body, 'include_usage') ?? false;
  }
  return {
    model: requireModel(body),
    stream,
    includeUsage,
    maxTokens,
    temperature: optionalNumber(body, 'temperature', 0, 2) ?? 1,
    // top_p 0 is accepted as "greedy-like": keep only the most likely token.
    topP: optionalNumber(body, 'top_p', 0, 1) ?? 1,
    extra: {
      topK: optionalNumber(body, 'top_k', 0, 1 << 20, true),
      minP: optionalNumber(body, 'min_p', 0, 1),
      // llama-server takes repeat_penalty ≤ 0 as "off"; here it must be a real factor.
      repeatPenalty: optionalNumber(body, 'repeat_penalty', 0.01, 10),
      repeatLastN: optionalNumber(body, 'repeat_last_n', 0, 1 << 16, true),
      presencePenalty: optionalNumber(body, 'presence_penalty', -2, 2),
      frequencyPenalty: optionalNumber(body, 'frequency_penalty', -2, 2),
    },
    seed: optionalNumber(body, 'seed', Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, true),
    stop: parseStop(body),
  };
}

export function parseCompletionRequest(body: Body): CompletionRequest {
  const sampling = parseSampling(body, ['max_tokens']);
  let prompt: string | number[];
  const p = body.prompt;
  if (typeof p === 'string') prompt = p;
  else if (Array.isArray(p) && p.length === 1 && typeof p[0] === 'string') prompt = p[0];
  else if (Array.isArray(p) && p.length > 0 && p.every((t) => Number.isInteger(t))) prompt = p as number[];
  else if (Array.isArray(p) && p.length === 1 && Array.isArray(p[0]) && p[0].every((t: unknown) => Number.isInteger(t))) prompt = p[0] as number[];
  else if (p === undefined) throw invalidParam('prompt', "'prompt' is required", 'missing_required_parameter');
  else if (Array.isArray(p) && p.length > 1) throw invalidParam('prompt', 'only one prompt per request is supported', 'unsupported_value');
  else throw invalidParam('prompt', `'prompt' must be a string or an array of token ids, got ${typeName(p)}`, 'invalid_type');
  // Completions: `logprobs` is an integer 0..5 = how many alternatives (0 = just the sampled token).
  const lp = optionalNumber(body, 'logprobs', 0, 20, true);
  return { kind: 'completion', ...sampling, prompt, logprobs: lp !== undefined, topLogprobs: lp ?? 0 };
}

const ROLES = new Set(['system', 'developer', 'user', 'assistant']);

function parseMessages(body: Body): ChatMessage[] {
  const v = body.messages;
  if (v === undefined) throw invalidParam('messages', "'messages' is required", 'missing_required_parameter');
  if (!Array.isArray(v) || v.length === 0) throw invalidParam('messages', "'messages' must be a non-empty array", 'invalid_type');
  return v.map((m, i): ChatMessage => {
    const param = `messages[${i}]`;
    if (typeof m !== 'object' || m === null || Array.isArray(m)) throw invalidParam(param, `${param} must be an object, got ${typeName(m)}`, 'invalid_type');
    const { role, content } = m as Body;
    if (typeof role !== 'string' || !ROLES.has(role)) {
      throw invalidParam(`${param}.role`, `${param}.role must be one of ${[...ROLES].join(', ')}, got ${JSON.stringify(role)}`);
    }
    let text: string;
    if (typeof content === 'string') text = content;
    else if (content === null && role === 'assistant') text = '';
    else if (Array.isArray(content)) {
      // Content parts: only text parts are meaningful to a text model.
      text = content
        .map((part, j) => {
          const pp = part as Body;
          if (typeof pp !== 'object' || pp === null || pp.type !== 'text' || typeof pp.text !== 'string') {
            throw invalidParam(`${param}.content[${j}]`, `${param}.content[${j}] must be a text part ({type:'text', text})`, 'unsupported_value');
          }
          return pp.text;
        })
        .join('');
    } else throw invalidParam(`${param}.content`, `${param}.content must be a string or an array of text parts, got ${typeName(content)}`, 'invalid_type');
    return { role: role === 'developer' ? 'system' : (role as ChatMessage['role']), content: text };
  });
}

export function parseChatRequest(body: Body): ChatRequest {
  const sampling = parseSampling(body, ['max_completion_tokens', 'max_tokens']);
  const messages = parseMessages(body);
  const logprobs = optionalBoolean(body, 'logprobs') ?? false;
  const topLogprobs = optionalNumber(body, 'top_logprobs', 0, 20, true) ?? 0;
  if (topLogprobs > 0 && !logprobs) throw invalidParam('top_logprobs', "'top_logprobs' needs 'logprobs': true");
  return { kind: 'chat', ...sampling, messages, logprobs, topLogprobs };
}
