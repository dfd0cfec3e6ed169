// `aser chat`: an interactive terminal chat. Answers stream as they are sampled; the history is kept
// within the context window (oldest turns dropped first); Ctrl-C stops an answer, Ctrl-C at the
// prompt (or Ctrl-D), /bye or /exit exits. Each answer ends with its token count and decode speed.
import { createInterface } from 'node:readline';
import type { CommandModule } from 'yargs';
import { openServing, type Serving, type ServingArgs } from '../../serve/open-serving.js';
import { servingOptions } from '../options.js';
import { badValue, requireInteger } from '../argv-check.js';
import { ChatConversation } from '../../serve/chat-session.js';

interface ChatArgs extends ServingArgs {
  system?: string;
  'max-tokens': number;
  temperature: number;
  'top-p': number;
  seed?: number;
}

const HELP = 'Ctrl-C stops an answer; /bye, /exit, Ctrl-D or Ctrl-C at the prompt ends the chat; /reset forgets the conversation.';

/** Lines that end the chat (llama.cpp and ollama users type /bye). */
export const CHAT_EXIT_COMMANDS = ['/bye', '/exit', '/quit'];

/** Per answer: tokens sampled and the time from the first to the last of them (decode speed). */
interface TurnStats { tokens: number; firstAt: number; lastAt: number }

/**
 * The serving bundle with an engine that counts the tokens of each answer as they are sampled, so the
 * chat can print tok/s per turn; generation itself is the engine's own.
 */
function countingServing(serving: Serving, stats: TurnStats): Serving {
  const engine = serving.engine;
  const counted = Object.create(engine) as typeof engine;
  counted.generate = (prompt, params, onToken) =>
    engine.generate(prompt, params, (token) => {
      const now = performance.now();
      if (stats.tokens++ === 0) stats.firstAt = now;
      stats.lastAt = now;
      return onToken(token);
    });
  return { ...serving, engine: counted };
}

export const chatCommand: CommandModule<object, ChatArgs> = {
  command: 'chat',
  describe: 'Chat with a model in the terminal (streaming; history kept within the context window)',
  builder: (y) =>
    y
      .options(servingOptions)
      .option('system', { type: 'string', describe: 'System message that starts the conversation' })
      .option('max-tokens', { type: 'number', default: 128, describe: 'Longest answer in tokens' })
      .option('temperature', { type: 'number', default: 0.8, describe: 'Sampling temperature (0 = greedy)' })
      .option('top-p', { type: 'number', default: 0.9, describe: 'Nucleus sampling threshold' })
      .option('seed', { type: 'number', describe: 'Sampling seed (default: random)' })
      .example('$0 chat', 'chat with stories260k')
      .example('$0 chat --model llama3-8b --system "You are terse."', 'a bigger model with a system message') as never,
  handler: async (args) => {
    requireInteger('max-tokens', args['max-tokens'], 1);
    if (!(Number.isFinite(args.temperature) && args.temperature >= 0)) throw badValue('temperature', args.temperature, 'must be ≥ 0 (0 = greedy)');
    if (!(args['top-p'] > 0 && args['top-p'] <= 1)) throw badValue('top-p', args['top-p'], 'must lie in (0, 1]');
    const serving = await openServing({ ...args, parallel: 1 }); // one conversation: no batching
    const { engine, chatTemplate } = serving;
    const out = process.stdout;
    const tty = Boolean(process.stdin.isTTY);
    const dim = (s: string) => (out.isTTY ? `\x1b[2m${s}\x1b[22m` : s);
    out.write(dim(`aser chat: ${engine.modelId}, context ${engine.contextLength} tokens, chat template: ${chatTemplate.origin}. ${HELP}`) + '\n');

    const rl = createInterface({ input: process.stdin, output: out, terminal: tty, prompt: '> ' });
    const turn: TurnStats = { tokens: 0, firstAt: 0, lastAt: 0 };
    const chat = new ChatConversation(countingServing(serving, turn), { system: args.system, maxTokens: args['max-tokens'], temperature: args.temperature, topP: args['top-p'], seed: args.seed });
    let answering: AbortController | undefined;

    const onInterrupt = () => {
      if (answering) answering.abort();
      else rl.close();
    };
    rl.on('SIGINT', onInterrupt);
    // Without a terminal, readline does not see Ctrl-C; the signal does.
    process.on('SIGINT', onInterrupt);

    async function answer(input: string): Promise<void> {
      const controller = (answering = new AbortController());
      Object.assign(turn, { tokens: 0, firstAt: 0, lastAt: 0 });
      let reply;
      try {
        reply = await chat.reply(input, {
          onDropped: (n) => out.write(dim(`(dropped the ${n} oldest messages to fit the context)`) + '\n'),
          onText: (text) => out.write(text),
        }, controller.signal);
      } finally {
        answering = undefined;
      }
      if (reply.finish === 'too-long') {
        out.write(dim(`(that message does not fit in the ${engine.contextLength}-token context; try a shorter one or /reset)`) + '\n');
        return;
      }
      if (reply.finish === 'aborted' && controller.signal.aborted) out.write(dim(' [stopped]'));
      else if (reply.finish === 'length') out.write(dim(' [length limit]'));
      const seconds = (turn.lastAt - turn.firstAt) / 1000;
      const rate = turn.tokens > 1 && seconds > 0 ? `, ${((turn.tokens - 1) / seconds).toFixed(1)} tok/s` : '';
      out.write('\n' + dim(`[${turn.tokens} tokens${rate}]`) + '\n');
    }

    try {
      rl.prompt();
      for await (const line of rl) {
        const input = line.trim();
        if (CHAT_EXIT_COMMANDS.includes(input)) break;
        if (input === '/reset') {
          chat.reset();
          out.write(dim('(conversation cleared)') + '\n');
        } else if (input === '/help') {
          out.write(dim(HELP) + '\n');
        } else if (input !== '') {
          await answer(input);
        }
        rl.prompt();
      }
    } finally {
      process.off('SIGINT', onInterrupt);
      rl.close();
      if (tty) out.write('\n');
      serving.close();
    }
  },
};
