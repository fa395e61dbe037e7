/**
 * A reader of server-sent events (the text/event-stream format every sanbox event stream uses:
 * arrays, link emulators, the monitor): `id:`, `event:` and `data:` fields, a blank line ends a
 * message, `:` lines are comments (heartbeats). Enough of the WHATWG format for our servers:
 * several `data:` lines are joined with newlines, `retry:` is ignored.
 */
export interface SseMessage {
  id?: string;
  event?: string;
  data: string;
}

/** The messages of a stream body, as they arrive. */
export async function* readSse(body: AsyncIterable<Uint8Array>): AsyncGenerator<SseMessage> {
  const decoder = new TextDecoder();
  let buf = '';
  let msg: { id?: string; event?: string; data: string[] } = { data: [] };
  for await (const chunk of body) {
    buf += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl).replace(/\r$/, '');
      buf = buf.slice(nl + 1);
      if (line === '') {
        if (msg.data.length || msg.event !== undefined) yield { ...(msg.id !== undefined ? { id: msg.id } : {}), ...(msg.event !== undefined ? { event: msg.event } : {}), data: msg.data.join('\n') };
        msg = { data: [] };
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'data') msg.data.push(value);
      else if (field === 'event') msg.event = value;
      else if (field === 'id') msg.id = value;
    }
  }
}
