// A minimal SSE reader over fetch for the tests: every `data:` payload, in order, as text.

export interface SseResult {
  status: number;
  contentType: string | null;
  /** Raw `data:` payloads, `[DONE]` included. */
  events: string[];
}

export async function readSse(response: Response, onEvent?: (data: string) => void): Promise<SseResult> {
  const events: string[] = [];
  const decoder = new TextDecoder();
  let buffer = '';
  const reader = response.body!.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      for (const line of block.split('\n')) {
        if (line.startsWith('data: ')) {
          events.push(line.slice(6));
          onEvent?.(line.slice(6));
        }
      }
    }
  }
  return { status: response.status, contentType: response.headers.get('content-type'), events };
}

export async function postSse(url: string, body: unknown, signal?: AbortSignal): Promise<SseResult> {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal });
  return readSse(response);
}
