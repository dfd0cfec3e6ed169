// Chat messages → one prompt string. The template comes from the model's tokenizer_config.json
// (`chat_template`, a Jinja string or a list of named templates; rendered by @huggingface/jinja) or,
// for base models without one, a plain documented fallback:
//
//     {system}\n\n            (only when there is a system message)
//     User: {content}\n
//     Assistant: {content}\n
//     ...
//     Assistant:              (the generation prompt)
//
// The fallback adds "\nUser:" as a stop sequence so a base model does not write the next user turn.
import { readFileSync } from 'node:fs';
import { Template } from '@huggingface/jinja';
import type { TextTokenizer } from '../core/model.js';
import { ChatTemplateError } from './errors.js';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export interface ChatTemplate {
  /** Where the template came from, for logs and /health. */
  readonly origin: 'tokenizer_config' | 'fallback';
  render(messages: readonly ChatMessage[], addGenerationPrompt?: boolean): string;
  /** Stop sequences the template implies (the fallback's turn marker); added to every chat request. */
  readonly stop: readonly string[];
  /** Token ids that end an assistant turn (eos, <|eot_id|>, <|im_end|>, …) that the tokenizer knows. */
  stopTokens(tokenizer: TextTokenizer): number[];
  /** Token ids for a rendered prompt: BOS is added unless the template already wrote the BOS text. */
  encode(tokenizer: TextTokenizer, rendered: string): number[];
}

/** The parts of tokenizer_config.json a chat template needs. */
export interface TokenizerConfigLike {
  chat_template?: unknown;
  bos_token?: unknown;
  eos_token?: unknown;
}

// End-of-turn markers of common instruct families; used only when the tokenizer maps one to a single id.
const TURN_END_MARKERS = ['<|eot_id|>', '<|im_end|>', '<|end|>', '<end_of_turn>', '<|endoftext|>'];

/** `bos_token` / `eos_token` may be a string or an AddedToken object `{content}`. */
function tokenText(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') return (v as { content: string }).content;
  return undefined;
}

function singleTokenId(tokenizer: TextTokenizer, text: string): number | undefined {
  try {
    const ids = tokenizer.encode(text, { bos: false });
    return ids.length === 1 ? ids[0] : undefined;
  } catch {
    return undefined;
  }
}

export function fallbackChatTemplate(): ChatTemplate {
  return {
    origin: 'fallback',
    stop: ['\nUser:'],
    render(messages, addGenerationPrompt = true) {
      let out = '';
      for (const m of messages) {
        if (m.role === 'system') out += `${m.content}\n\n`;
        else out += `${m.role === 'user' ? 'User' : 'Assistant'}: ${m.content}\n`;
      }
      return addGenerationPrompt ? out + 'Assistant:' : out;
    },
    stopTokens: (tokenizer) => [tokenizer.eosId],
    encode: (tokenizer, rendered) => tokenizer.encode(rendered, { bos: true }),
  };
}

/** A Jinja chat template from a tokenizer_config.json object; the fallback when it has none. */
export function chatTemplateFromConfig(config: TokenizerConfigLike | undefined): ChatTemplate {
  let source = config?.chat_template;
  if (Array.isArray(source)) {
    // Named templates (HF's list form): the one called "default".
    source = (source as Array<{ name?: unknown; template?: unknown }>).find((t) => t?.name === 'default')?.template;
  }
  if (typeof source !== 'string' || source.trim() === '') return fallbackChatTemplate();
  let template: Template;
  try {
    template = new Template(source);
  } catch (err) {
    throw new ChatTemplateError(`chat_template does not parse: ${(err as Error).message}`);
  }
  const bosToken = tokenText(config?.bos_token) ?? '';
  const eosToken = tokenText(config?.eos_token) ?? '';
  const text = source;
  return {
    origin: 'tokenizer_config',
    stop: [],
    render(messages, addGenerationPrompt = true) {
      try {
        return template.render({ messages, add_generation_prompt: addGenerationPrompt, bos_token: bosToken, eos_token: eosToken });
      } catch (err) {
        // Templates raise on conversations they do not accept (e.g. roles that do not alternate).
        throw new ChatTemplateError(`chat template rejected the conversation: ${(err as Error).message}`);
      }
    },
    stopTokens(tokenizer) {
      const ids = new Set<number>([tokenizer.eosId]);
      for (const marker of [eosToken, ...TURN_END_MARKERS.filter((m) => text.includes(m))]) {
        const id = marker ? singleTokenId(tokenizer, marker) : undefined;
        if (id !== undefined) ids.add(id);
      }
      return [...ids];
    },
    encode(tokenizer, rendered) {
      const hasBos = bosToken !== '' && rendered.startsWith(bosToken);
      return tokenizer.encode(rendered, { bos: !hasBos });
    },
  };
}

/** Reads tokenizer_config.json (when the file exists) and builds its chat template. */
export function loadChatTemplate(tokenizerConfigPath: string | undefined): ChatTemplate {
  if (!tokenizerConfigPath) return fallbackChatTemplate();
  let raw: string;
  try {
    raw = readFileSync(tokenizerConfigPath, 'utf8');
  } catch {
    return fallbackChatTemplate();
  }
  let config: TokenizerConfigLike;
  try {
    config = JSON.parse(raw) as TokenizerConfigLike;
  } catch (err) {
    throw new ChatTemplateError(`${tokenizerConfigPath}: not valid JSON: ${(err as Error).message}`);
  }
  return chatTemplateFromConfig(config);
}
