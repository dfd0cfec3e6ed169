// `aser chat` in a real terminal (a tmux pty) and `aser serve` as a process, both through the `aser`
// executable of the TypeScript build in dist/ (built once here), on the real stories260K model.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';

const ENTRY = 'dist/cli/aser.js';
const TMUX = ['-L', `aser-chat-test-${process.pid}`];

function tmux(...args: string[]): string {
  return execFileSync('tmux', [...TMUX, ...args], { encoding: 'utf8' });
}

const screen = () => tmux('capture-pane', '-p', '-J', '-S', '-200', '-t', 'chat');

async function waitFor(what: string, test: (screen: string) => boolean, timeoutMs = 20_000): Promise<string> {
  const end = performance.now() + timeoutMs;
  let last = '';
  while (performance.now() < end) {
    try {
      last = screen();
    } catch {
      // The pane is gone once the command has exited and the shell ended.
    }
    if (test(last)) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}; screen:\n${last}`);
}

/** Prompt lines ("> ..."), one per turn started, plus the current empty prompt. */
const prompts = (s: string) => s.split('\n').filter((l) => l.startsWith('> ')  || l === '>');

beforeAll(() => {
  // Type errors elsewhere in the tree do not stop tsc from emitting; what matters is that our files are there.
  spawnSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.json'], { stdio: 'ignore' });
  for (const f of [ENTRY, 'dist/cli/commands/chat.js', 'dist/cli/commands/serve.js', 'dist/serve/server.js']) {
    if (!existsSync(f)) throw new Error(`the TypeScript build did not produce ${f}`);
  }
}, 120_000);

describe('aser chat in a terminal', () => {
  afterAll(() => {
    try {
      tmux('kill-server');
    } catch {
      // already gone
    }
  });

  it('streams two answers, stops an answer on Ctrl-C, and exits on Ctrl-C at the prompt', async () => {
    const hasTmux = spawnSync('tmux', ['-V']).status === 0;
    expect(hasTmux, 'tmux is needed for the terminal test (apt-get install tmux)').toBe(true);
    const command = `node ${ENTRY} chat --model stories260k --seed 1 --max-tokens 200 --system "You tell stories."; echo "EXIT:$?"; sleep 30`;
    tmux('new-session', '-d', '-x', '160', '-y', '50', '-s', 'chat', command);
    await waitFor('the banner and first prompt', (s) => s.includes('aser chat: stories260k') && prompts(s).length === 1);

    tmux('send-keys', '-t', 'chat', 'Tell me a story about a cat.', 'Enter');
    let s = await waitFor('the first answer', (x) => prompts(x).length === 2);
    const firstAnswer = s.slice(s.indexOf('> Tell me a story about a cat.') + 30, s.lastIndexOf('\n>')).trim();
    expect(firstAnswer.replace(/\[length limit\]/, '').trim().length).toBeGreaterThan(10);

    tmux('send-keys', '-t', 'chat', 'What did the cat do next?', 'Enter');
    s = await waitFor('the second answer', (x) => prompts(x).length === 3);
    const second = s.slice(s.indexOf('> What did the cat do next?') + 27, s.lastIndexOf('\n>')).trim();
    expect(second.length).toBeGreaterThan(10);

    // Ctrl-C while an answer streams stops it and returns to the prompt.
    tmux('send-keys', '-t', 'chat', 'And then?', 'Enter');
    await waitFor('the third answer to start', (x) => {
      const at = x.indexOf('> And then?');
      return at >= 0 && x.slice(at + 11).trim().length > 0;
    });
    tmux('send-keys', '-t', 'chat', 'C-c');
    s = await waitFor('the stopped answer', (x) => prompts(x).length === 4);
    expect(s).toContain('[stopped]');

    // Ctrl-C at the prompt exits cleanly.
    tmux('send-keys', '-t', 'chat', 'C-c');
    s = await waitFor('the exit', (x) => x.includes('EXIT:'));
    expect(s).toContain('EXIT:0');
  }, 60_000);
});

describe('aser serve as a process', () => {
  let child: ChildProcess | undefined;
  afterAll(() => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
  });

  it('prints its address, answers on loopback, and shuts down on SIGINT', async () => {
    child = spawn(process.execPath, [ENTRY, 'serve', '--model', 'stories260k', '--port', '0', '--quiet'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      child!.stdout!.on('data', (d) => {
        out += d;
        const m = out.match(/^listening (http:\/\/127\.0\.0\.1:\d+)$/m);
        if (m) resolve(m[1]!);
      });
      child!.on('exit', (code) => reject(new Error(`serve exited with ${code}: ${stderr}`)));
    });
    expect(stderr).toMatch(/serving stories260k \(context 512 tokens, continuous batching, \d+ slots, chat template: fallback\)/);
    const models = (await (await fetch(`${url}/v1/models`)).json()) as { data: Array<{ id: string }> };
    expect(models.data.map((m) => m.id)).toEqual(['stories260k']);
    const res = await fetch(`${url}/v1/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'stories260k', prompt: 'Once upon a time', max_tokens: 8, temperature: 0 }),
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { usage: { completion_tokens: number } }).usage.completion_tokens).toBe(8);
    const exited = new Promise<number | null>((r) => child!.once('exit', (code) => r(code)));
    child.kill('SIGINT');
    expect(await exited).toBe(0);
  }, 30_000);

  it('refuses a busy port with exit code 2 and a hint', async () => {
    const blocker = (await import('node:net')).createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const port = (blocker.address() as { port: number }).port;
    const r = spawnSync(process.execPath, [ENTRY, 'serve', '--port', String(port)], { encoding: 'utf8' });
    blocker.close();
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/already in use/);
    expect(r.stderr).toMatch(/hint: .*--port/);
    // Freeing the model after a bind error is not a device loss.
    expect(r.stderr).not.toMatch(/device lost|re-creat/i);
  }, 30_000);

  it('on SIGTERM ends 3 streams in flight with a final chunk and [DONE], and exits 0 without re-creating the device', async () => {
    const proc = spawn(process.execPath, [ENTRY, 'serve', '--model', 'stories260k', '--port', '0', '--parallel', '4', '--shutdown-grace', '0.5', '--quiet'], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    let stderr = '';
    proc.stderr!.on('data', (d) => (stderr += d));
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      proc.stdout!.on('data', (d) => {
        out += d;
        const m = out.match(/^listening (http:\/\/127\.0\.0\.1:\d+)$/m);
        if (m) resolve(m[1]!);
      });
      proc.on('exit', (code) => reject(new Error(`serve exited with ${code}: ${stderr}`)));
    });
    const { readSse } = await import('./sse-client.js');
    let firstTokens = 0;
    let allStarted!: () => void;
    const started = new Promise<void>((r) => (allStarted = r));
    const streams = [0, 1, 2].map(async (i) => {
      const res = await fetch(`${url}/v1/completions`, {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'stories260k', prompt: 'Once upon a time', max_tokens: 500, temperature: 0.8, seed: i, stream: true }),
      });
      let seen = false;
      return readSse(res, (data) => {
        if (!seen && data.includes('"text":"') && !data.includes('"text":""')) {
          seen = true;
          if (++firstTokens === 3) allStarted();
        }
      });
    });
    await started;
    const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
    proc.kill('SIGTERM');
    const results = await Promise.all(streams);
    for (const r of results) {
      expect(r.events.at(-1)).toBe('[DONE]');
      const last = JSON.parse(r.events.at(-2)!) as { choices: Array<{ finish_reason: string | null }> };
      expect(last.choices[0]!.finish_reason).toBe('length');
    }
    expect(await exited).toBe(0);
    expect(stderr).toMatch(/shutting down/);
    expect(stderr).not.toMatch(/device lost|re-creat/i);
  }, 60_000);
});
