// The events of a child array so far: its SSE stream replayed from 0 and read for a moment.
export async function childEvents(base: string): Promise<Array<Record<string, unknown>>> {
  const ac = new AbortController();
  const r = await fetch(`${base}/v1/events?since=0`, { signal: ac.signal });
  let text = '';
  const reader = r.body!.getReader();
  const stop = setTimeout(() => ac.abort(), 400);
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += Buffer.from(value).toString();
    }
  } catch {
    /* aborted: the moment is over */
  }
  clearTimeout(stop);
  return text
    .split('\n')
    .filter((l) => l.startsWith('data: '))
    .map((l) => JSON.parse(l.slice(6)));
}
