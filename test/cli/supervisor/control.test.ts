// The lab supervisor's control API against the requests a web page can make without a preflight
// (with the right token even): a POST needs `Content-Type: application/json` or
// `X-Sanbox-Request: 1` (else 415), a foreign Origin is refused (403) unless configured, and a
// refused request reaches no supervisor operation. The supervisor is a recording fake.
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ControlServer, SupervisorEvents, type LabSupervisor } from '../../../src/cli/supervisor/index.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function start(allowedOrigins?: string[]) {
  const dir = await mkdtemp(join(tmpdir(), 'sanbox-supctl-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const calls: string[] = [];
  const sup = {
    state: { lab: 'test', arrays: [{ name: 'alpha', state: 'running' }] },
    crash: async (n: string) => (calls.push(`crash ${n}`), { array: n }),
    restart: async (n: string) => (calls.push(`restart ${n}`), { array: n }),
    siteFail: async (n: string) => (calls.push(`siteFail ${n}`), { site: n }),
    siteRestore: async (n: string) => (calls.push(`siteRestore ${n}`), { site: n }),
  } as unknown as LabSupervisor;
  const events = new SupervisorEvents('test', join(dir, 'events.jsonl'), () => undefined);
  const srv = allowedOrigins ? new ControlServer(sup, events, { allowedOrigins }) : new ControlServer(sup, events);
  const { url, token } = await srv.listen();
  cleanups.push(() => srv.close());
  const post = async (path: string, headers: Record<string, string>, body?: string) => {
    const res = await fetch(url + path, { method: 'POST', headers: { Authorization: `Bearer ${token}`, ...headers }, body });
    const text = await res.text();
    return { status: res.status, json: text ? JSON.parse(text) : undefined };
  };
  return { url, token, calls, post };
}

const EVIL = 'http://evil.example';

describe('supervisor control API: requests a browser sends cross-origin without a preflight', () => {
  it('refuses them with 415 or 403 and calls nothing', async () => {
    const { calls, post } = await start();
    const cases: [string, string, Record<string, string>, string | undefined, number, string][] = [
      ['text/plain crash from a foreign page', '/v1/arrays/alpha/crash', { Origin: EVIL, 'Content-Type': 'text/plain' }, '', 403, 'forbidden-origin'],
      ['JSON site fail from a foreign page', '/v1/sites/east/fail', { Origin: EVIL, 'Content-Type': 'application/json' }, undefined, 403, 'forbidden-origin'],
      ['text/plain crash, empty body', '/v1/arrays/alpha/crash', { 'Content-Type': 'text/plain' }, '', 415, 'unsupported-media-type'],
      ['no content type, no body', '/v1/arrays/alpha/restart', {}, undefined, 415, 'unsupported-media-type'],
      ['a form', '/v1/sites/east/restore', { 'Content-Type': 'application/x-www-form-urlencoded' }, 'x=1', 415, 'unsupported-media-type'],
    ];
    const got: [string, number, string | undefined][] = [];
    for (const [what, path, headers, body] of cases) {
      const r = await post(path, headers, body);
      got.push([what, r.status, r.json?.error?.code]);
    }
    expect(got).toEqual(cases.map(([what, , , , status, code]) => [what, status, code]));
    expect(calls).toEqual([]);
  });

  it('accepts JSON without a body, X-Sanbox-Request: 1, its own origin and a configured one', async () => {
    const { url, calls, post } = await start(['http://dash.example:8480']);
    const ok: [string, Record<string, string>][] = [
      ['/v1/arrays/alpha/crash', { 'Content-Type': 'application/json' }],
      ['/v1/arrays/alpha/restart', { 'X-Sanbox-Request': '1' }],
      ['/v1/sites/east/fail', { 'Content-Type': 'application/json', Origin: url }],
      ['/v1/sites/east/restore', { 'Content-Type': 'application/json', Origin: 'http://dash.example:8480' }],
    ];
    for (const [path, headers] of ok) {
      const r = await post(path, headers);
      expect(r.status, `${path}: ${JSON.stringify(r.json)}`).toBe(200);
    }
    expect(calls).toEqual(['crash alpha', 'restart alpha', 'siteFail east', 'siteRestore east']);
  });

  it('GET answers whatever the origin; the token is still required first', async () => {
    const { url, token } = await start();
    const ok = await fetch(url + '/v1/status', { headers: { Authorization: `Bearer ${token}`, Origin: EVIL } });
    expect(ok.status).toBe(200);
    const noToken = await fetch(url + '/v1/arrays/alpha/crash', { method: 'POST', headers: { 'Content-Type': 'application/json' } });
    expect(noToken.status).toBe(401);
  });
});
