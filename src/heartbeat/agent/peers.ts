/**
 * Agent-to-agent and agent-to-witness requests: JSON over HTTP with a deadline. A failed request
 * is a result, not an exception: a path that does not answer is what heartbeats are about.
 */
export type PostResult = { ok: true; status: number; body: unknown } | { ok: false; status?: number; error: string; body?: unknown };

export async function postJson(url: string, body: unknown, deadlineMs: number): Promise<PostResult> {
  try {
    const r = await fetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(deadlineMs),
    });
    const text = await r.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      // not JSON: the text itself is the answer (shown in the error below)
    }
    if (r.ok) return { ok: true, status: r.status, body: parsed };
    const err = (parsed as { error?: { message?: string } } | null)?.error?.message ?? String(text).slice(0, 200);
    return { ok: false, status: r.status, error: `HTTP ${r.status}: ${err}`, body: parsed };
  } catch (e) {
    return unanswered(e, deadlineMs);
  }
}

/** A request that got no answer: the deadline, or the socket's error code. */
function unanswered(e: unknown, deadlineMs: number): PostResult {
  const err = e as Error & { cause?: { code?: string } };
  return { ok: false, error: err.name === 'TimeoutError' ? `no answer within ${deadlineMs} ms` : (err.cause?.code ?? err.message) };
}

export async function getJson(url: string, deadlineMs: number): Promise<PostResult> {
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(deadlineMs) });
    const body = (await r.json()) as unknown;
    return r.ok ? { ok: true, status: r.status, body } : { ok: false, status: r.status, error: `HTTP ${r.status}`, body };
  } catch (e) {
    return unanswered(e, deadlineMs);
  }
}
