// The server's CPU-side pieces against real tokenizers: stop-aware text streaming, chat templates,
// request validation, the FIFO queue, Prometheus rendering, history fitting.
import { describe, expect, it } from 'vitest';
import { loadHfTokenizer } from '../../loaders/hf-tokenizer.js';
import { CompletionText } from '../../serve/text-stream.js';
import { chatTemplateFromConfig, fallbackChatTemplate, loadChatTemplate } from '../../serve/chat-template.js';
import { parseChatRequest, parseCompletionRequest, parseJsonBody } from '../../serve/validate.js';
import { ApiError, ChatTemplateError } from '../../serve/errors.js';
import { FifoScheduler } from '../../serve/scheduler.js';
import { Histogram, ServerMetrics } from '../../serve/metrics.js';
import { fitHistory } from '../../serve/chat-history.js';
import { logprobsOf } from '../../serve/executor-engine.js';

const tok512 = loadHfTokenizer('../shared/tokenizers/tok512/tokenizer.json');
const llama3 = loadHfTokenizer('../shared/tokenizers/llama3/tokenizer.json');

// Meta's published Llama-3 instruct template (the one in Meta-Llama-3-8B-Instruct's tokenizer_config.json).
const LLAMA3_TEMPLATE =
  "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";

/** Pushes all of `ids` through a CompletionText, collecting what it lets out chunk by chunk. */
function stream(ids: number[], prompt: number[], stops: string[]) {
  const t = new CompletionText(tok512, prompt, stops);
  const chunks: string[] = [];
  let stoppedAt = -1;
  for (let i = 0; i < ids.length; i++) {
    const stopped = t.push(ids[i]!);
    chunks.push(t.take().text);
    if (stopped) {
      stoppedAt = i;
      break;
    }
  }
  const last = t.finish();
  chunks.push(last.text);
  return { chunks, text: t.value, stoppedAt, offsets: t.offsets };
}

describe('CompletionText (stop sequences over streamed tokens)', () => {
  const prompt = tok512.encode('Once upon a time', { bos: true });
  const completion = ' there was a little girl named Lily. She liked to play.';
  const ids = tok512.encode(completion).slice(0);

  it('streams the exact continuation text, leading space included, when no stop matches', () => {
    const r = stream(ids, prompt, []);
    expect(r.chunks.join('')).toBe(tok512.decode([...prompt, ...ids]).slice('Once upon a time'.length));
    expect(r.text).toBe(r.chunks.join(''));
    expect(r.stoppedAt).toBe(-1);
  });

  it('cuts before a stop sequence that spans tokens and never sends any part of it', () => {
    const r = stream(ids, prompt, ['named Li']);
    expect(r.text).toBe(' there was a little girl ');
    expect(r.chunks.join('')).toBe(r.text);
    expect(r.stoppedAt).toBeGreaterThan(0);
    expect(r.stoppedAt).toBeLessThan(ids.length - 1);
  });

  it('holds back a possible stop prefix and releases it when the match fails', () => {
    // "girl n" looks like the start of "girl nope" until "named" arrives.
    const r = stream(ids, prompt, ['girl nope']);
    expect(r.text).toBe(r.chunks.join(''));
    expect(r.text.endsWith('to play.')).toBe(true);
    const joinedBefore = r.chunks.slice(0, -1).join('');
    expect(joinedBefore.length).toBeLessThanOrEqual(r.text.length);
  });

  it('uses the earliest of several stop sequences', () => {
    expect(stream(ids, prompt, ['play', 'little']).text).toBe(' there was a ');
  });

  it('reports each token with its share of the text, contiguously, cut where the text is cut', () => {
    for (const stops of [[], ['girl'], ['Lily. She']]) {
      const t = new CompletionText(tok512, prompt, stops);
      const reported: Array<{ index: number; text: string }> = [];
      let sent = '';
      for (const id of ids) {
        const stopped = t.push(id);
        const c = t.take();
        sent += c.text;
        reported.push(...c.tokens);
        // Tokens never run ahead of the text that has gone out.
        expect(reported.map((r) => r.text).join('')).toBe(sent.slice(0, reported.map((r) => r.text).join('').length));
        if (stopped) break;
      }
      const end = t.finish();
      sent += end.text;
      reported.push(...end.tokens);
      expect(sent).toBe(t.value);
      expect(reported.map((r) => r.index)).toEqual(reported.map((_, i) => i));
      expect(reported.map((r) => r.text).join('')).toBe(t.value);
      for (const r of reported) expect(t.offsets[r.index]!).toBeLessThan(t.value.length);
      if (stops.length === 0) expect(reported).toHaveLength(ids.length);
    }
  });

  it('drops leading whitespace of a chat answer and keeps token texts consistent', () => {
    const t = new CompletionText(tok512, prompt, [], { trimStart: true });
    const reported: string[] = [];
    for (const id of ids) {
      t.push(id);
      reported.push(...t.take().tokens.map((x) => x.text));
    }
    reported.push(...t.finish().tokens.map((x) => x.text));
    expect(t.value).toBe(completion.trimStart());
    expect(reported.join('')).toBe(t.value);
  });

  it('emits multi-byte characters whole (byte-fallback tokens)', () => {
    const text = ' café 😀 ok';
    const r = stream(tok512.encode(text), prompt, []);
    expect(r.text).toBe(text);
    for (const c of r.chunks) expect(c.includes('\uFFFD')).toBe(false);
  });
});

describe('chat templates', () => {
  const messages = [
    { role: 'system' as const, content: 'Be brief.' },
    { role: 'user' as const, content: 'Hi' },
    { role: 'assistant' as const, content: 'Hello!' },
    { role: 'user' as const, content: 'Tell a story' },
  ];

  it('the plain fallback renders the documented layout and stops at the next user turn', () => {
    const t = fallbackChatTemplate();
    expect(t.render(messages)).toBe('Be brief.\n\nUser: Hi\nAssistant: Hello!\nUser: Tell a story\nAssistant:');
    expect(t.stop).toEqual(['\nUser:']);
    expect(t.encode(tok512, 'User: Hi')[0]).toBe(tok512.bosId);
    expect(t.stopTokens(tok512)).toEqual([tok512.eosId]);
  });

  it('the shared tokenizer configs carry no chat_template, so they load the fallback', () => {
    for (const name of ['tok512', 'llama2', 'llama3']) {
      expect(loadChatTemplate(`../shared/tokenizers/${name}/tokenizer_config.json`).origin).toBe('fallback');
    }
    expect(loadChatTemplate('/nonexistent/tokenizer_config.json').origin).toBe('fallback');
  });

  it('renders a Llama-3 instruct Jinja template and stops on <|eot_id|>', () => {
    const t = chatTemplateFromConfig({ chat_template: LLAMA3_TEMPLATE, bos_token: '<|begin_of_text|>', eos_token: '<|eot_id|>' });
    expect(t.origin).toBe('tokenizer_config');
    const text = t.render(messages);
    expect(text).toBe(
      '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>' +
        '<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>' +
        '<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>' +
        '<|start_header_id|>user<|end_header_id|>\n\nTell a story<|eot_id|>' +
        '<|start_header_id|>assistant<|end_header_id|>\n\n',
    );
    const ids = t.encode(llama3, text);
    // The template wrote BOS itself: exactly one BOS, and markers are single special tokens.
    expect(ids[0]).toBe(128000);
    expect(ids.filter((id) => id === 128000)).toHaveLength(1);
    expect(ids.filter((id) => id === 128009)).toHaveLength(4);
    expect(new Set(t.stopTokens(llama3))).toEqual(new Set([llama3.eosId, 128009]));
  });

  it('picks the "default" template from the list form and reports template errors as ChatTemplateError', () => {
    const t = chatTemplateFromConfig({ chat_template: [{ name: 'tool_use', template: 'x' }, { name: 'default', template: '{{ messages[0].content }}!' }] });
    expect(t.render([{ role: 'user', content: 'hey' }])).toBe('hey!');
    expect(() => chatTemplateFromConfig({ chat_template: '{% if %}' })).toThrow(ChatTemplateError);
    const strict = chatTemplateFromConfig({ chat_template: "{{ raise_exception('roles must alternate') }}" });
    expect(() => strict.render(messages)).toThrow(/roles must alternate/);
  });
});

describe('request validation', () => {
  const expectApiError = (fn: () => unknown, status: number, param: string | null, code?: string) => {
    try {
      fn();
    } catch (err) {
      expect(err).toBeInstanceOf(ApiError);
      const e = err as ApiError;
      expect(e.status).toBe(status);
      expect(e.param).toBe(param);
      if (code) expect(e.code).toBe(code);
      expect(e.toJSON().error.message.length).toBeGreaterThan(0);
      return;
    }
    throw new Error('expected an ApiError');
  };

  it('normalizes a completion request', () => {
    const r = parseCompletionRequest({ model: 'm', prompt: ['hi'], max_tokens: 5, stop: 'x', logprobs: 2, seed: 3, stream: true, stream_options: { include_usage: true } });
    expect(r).toMatchObject({ prompt: 'hi', maxTokens: 5, stop: ['x'], logprobs: true, topLogprobs: 2, seed: 3, stream: true, includeUsage: true, temperature: 1, topP: 1 });
    expect(parseCompletionRequest({ model: 'm', prompt: [1, 2, 3] }).prompt).toEqual([1, 2, 3]);
    expect(parseCompletionRequest({ model: 'm', prompt: 'a', logprobs: null }).logprobs).toBe(false);
  });

  it('normalizes a chat request (content parts, developer role, max_completion_tokens)', () => {
    const r = parseChatRequest({
      model: 'm',
      messages: [{ role: 'developer', content: 'sys' }, { role: 'user', content: [{ type: 'text', text: 'a' }, { type: 'text', text: 'b' }] }],
      max_completion_tokens: 7, logprobs: true, top_logprobs: 3,
    });
    expect(r.messages).toEqual([{ role: 'system', content: 'sys' }, { role: 'user', content: 'ab' }]);
    expect(r).toMatchObject({ maxTokens: 7, logprobs: true, topLogprobs: 3 });
  });

  it('rejects bad JSON and wrong types with 400 naming the field', () => {
    expectApiError(() => parseJsonBody('{"model": '), 400, null, 'invalid_json');
    expectApiError(() => parseJsonBody('[1]'), 400, null, 'invalid_json');
    expectApiError(() => parseCompletionRequest({ prompt: 'x' }), 400, 'model', 'missing_required_parameter');
    expectApiError(() => parseCompletionRequest({ model: 'm', prompt: 'x', max_tokens: 'ten' }), 400, 'max_tokens', 'invalid_type');
    expectApiError(() => parseCompletionRequest({ model: 'm', prompt: 'x', max_tokens: 0 }), 400, 'max_tokens');
    expectApiError(() => parseCompletionRequest({ model: 'm', prompt: 'x', temperature: 3 }), 400, 'temperature');
    expectApiError(() => parseCompletionRequest({ model: 'm', prompt: 'x', top_p: -0.1 }), 400, 'top_p');
    expectApiError(() => parseCompletionRequest({ model: 'm', prompt: 'x', seed: 1.5 }), 400, 'seed');
    expectApiError(() => parseCompletionRequest({ model: 'm', prompt: 'x', stop: [1] }), 400, 'stop');
    expectApiError(() => parseCompletionRequest({ model: 'm', prompt: 'x', stop: ['a', 'b', 'c', 'd', 'e'] }), 400, 'stop');
    expectApiError(() => parseCompletionRequest({ model: 'm', prompt: 'x', stream: 'yes' }), 400, 'stream');
    expectApiError(() => parseCompletionRequest({ model: 'm', prompt: 42 }), 400, 'prompt');
    expectApiError(() => parseCompletionRequest({ model: 'm', prompt: ['a', 'b'] }), 400, 'prompt', 'unsupported_value');
    expectApiError(() => parseCompletionRequest({ model: 'm', prompt: 'x', n: 2 }), 400, 'n', 'unsupported_value');
    expectApiError(() => parseCompletionRequest({ model: 'm', prompt: 'x', echo: true }), 400, 'echo');
    expectApiError(() => parseChatRequest({ model: 'm', messages: [] }), 400, 'messages');
    expectApiError(() => parseChatRequest({ model: 'm', messages: [{ role: 'robot', content: 'x' }] }), 400, 'messages[0].role');
    expectApiError(() => parseChatRequest({ model: 'm', messages: [{ role: 'user', content: 5 }] }), 400, 'messages[0].content');
    expectApiError(() => parseChatRequest({ model: 'm', messages: [{ role: 'user', content: 'x' }], top_logprobs: 2 }), 400, 'top_logprobs');
    expectApiError(() => parseChatRequest({ model: 'm', messages: [{ role: 'user', content: 'x' }], tools: [{}] }), 400, 'tools');
  });
});

describe('FifoScheduler', () => {
  const tick = () => new Promise((r) => setTimeout(r, 1));

  it('runs up to `concurrency` jobs at once, in arrival order, and starts the next as one ends', async () => {
    const s = new FifoScheduler(4, () => {}, 2);
    const gates = new Map<string, () => void>();
    const started: string[] = [];
    const job = (name: string) => () => new Promise<string>((resolve) => {
      started.push(name);
      gates.set(name, () => resolve(name));
    });
    const all = ['a', 'b', 'c', 'd'].map((n) => s.submit(job(n)));
    await tick();
    expect(started).toEqual(['a', 'b']);
    expect([s.runningCount, s.waitingCount]).toEqual([2, 2]);
    gates.get('b')!();
    await tick();
    expect(started).toEqual(['a', 'b', 'c']);
    gates.get('a')!();
    gates.get('c')!();
    await tick();
    gates.get('d')!();
    expect(await Promise.all(all)).toEqual(['a', 'b', 'c', 'd']);
    expect([s.runningCount, s.waitingCount]).toEqual([0, 0]);
    expect(() => new FifoScheduler(1, () => {}, 0)).toThrow(/concurrency/);
  });

  it('runs jobs one at a time in arrival order and refuses with 429 beyond the bound', async () => {
    const depth: number[] = [];
    const s = new FifoScheduler(2, (w) => depth.push(w));
    const order: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const job = (name: string, wait?: Promise<void>) => async () => {
      order.push(`start ${name}`);
      await wait;
      await tick();
      order.push(`end ${name}`);
      return name;
    };
    const a = s.submit(job('a', gate));
    const b = s.submit(job('b'));
    const c = s.submit(job('c'));
    expect(s.full).toBe(true);
    expect(() => s.submit(job('d'))).toThrow(ApiError);
    try {
      s.submit(job('d'));
    } catch (err) {
      expect((err as ApiError).status).toBe(429);
    }
    release();
    expect(await Promise.all([a, b, c])).toEqual(['a', 'b', 'c']);
    expect(order).toEqual(['start a', 'end a', 'start b', 'end b', 'start c', 'end c']);
    expect(Math.max(...depth)).toBe(2);
    expect(depth.at(-1)).toBe(0);
  });

  it('drops a waiting job whose signal aborts, without running it', async () => {
    const s = new FifoScheduler(4);
    let release!: () => void;
    const first = s.submit(() => new Promise<void>((r) => (release = r)));
    const controller = new AbortController();
    let ran = false;
    const second = s.submit(async () => {
      ran = true;
    }, controller.signal);
    expect(s.waitingCount).toBe(1);
    controller.abort(new Error('gone'));
    await expect(second).rejects.toThrow('gone');
    expect(s.waitingCount).toBe(0);
    release();
    await first;
    expect(ran).toBe(false);
    expect(s.runningCount).toBe(0);
  });
});

describe('metrics', () => {
  it('renders cumulative histogram buckets and all series in Prometheus text format', () => {
    const h = new Histogram('x_seconds', 'help', [0.1, 1]);
    h.observe(0.05);
    h.observe(0.5);
    h.observe(5);
    expect(h.render().split('\n')).toEqual([
      '# HELP x_seconds help', '# TYPE x_seconds histogram',
      'x_seconds_bucket{le="0.1"} 1', 'x_seconds_bucket{le="1"} 2', 'x_seconds_bucket{le="+Inf"} 3', 'x_seconds_sum 5.55', 'x_seconds_count 3',
    ]);
    const m = new ServerMetrics();
    m.requests.inc({ route: '/v1/completions', code: '200' });
    m.recordToken();
    const text = m.render();
    expect(text).toContain('aser_http_requests_total{route="/v1/completions",code="200"} 1');
    expect(text).toContain('aser_generated_tokens_total 1');
    expect(text).toMatch(/aser_generation_tokens_per_second 0\.1\n/);
    for (const name of ['aser_queue_depth', 'aser_time_to_first_token_seconds_count', 'aser_inter_token_latency_seconds_bucket']) expect(text).toContain(name);
  });
});

describe('fitHistory', () => {
  const t = fallbackChatTemplate();
  const encode = (m: Parameters<typeof t.render>[0]) => t.encode(tok512, t.render(m as never));
  const history = [
    { role: 'system' as const, content: 'You tell stories.' },
    ...Array.from({ length: 6 }, (_, i) => [
      { role: 'user' as const, content: `Question number ${i} about a cat and a dog.` },
      { role: 'assistant' as const, content: `Answer number ${i}: the cat and the dog played in the park all day.` },
    ]).flat(),
    { role: 'user' as const, content: 'And then?' },
  ];

  it('keeps everything when it fits, drops the oldest turns when it does not, and always keeps the system message', () => {
    const all = fitHistory(history, encode, 4096, 64)!;
    expect(all.dropped).toBe(0);
    const full = encode(history).length;
    const fitted = fitHistory(history, encode, full, 64)!;
    expect(fitted.dropped).toBeGreaterThan(0);
    expect(fitted.ids.length).toBeLessThanOrEqual(full - 64);
    expect(fitted.messages[0]).toEqual(history[0]);
    expect(fitted.messages[1]!.role).toBe('user');
    expect(fitted.messages.at(-1)).toEqual(history.at(-1));
    expect(fitHistory(history, encode, 10, 5)).toBeUndefined();
  });
});

describe('logprobsOf', () => {
  it('is a normalized log-softmax with the top alternatives best first', () => {
    const logits = new Float32Array([1, 3, -2, 3.5, 0, 2]);
    const { logprob, top } = logprobsOf(logits, 1, 3);
    const z = Math.log(Array.from(logits).reduce((s, v) => s + Math.exp(v), 0));
    expect(logprob).toBeCloseTo(3 - z, 6);
    expect(top.map((t) => t.id)).toEqual([3, 1, 5]);
    top.forEach((t) => expect(t.logprob).toBeCloseTo(logits[t.id]! - z, 6));
    expect(logprobsOf(logits, 2, 0).top).toEqual([]);
    const all = logprobsOf(logits, 0, 6).top;
    expect(all.reduce((s, t) => s + Math.exp(t.logprob), 0)).toBeCloseTo(1, 6);
  });
});
