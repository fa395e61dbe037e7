// The link emulator's control API against the requests a web page can make without a preflight:
// a POST needs `Content-Type: application/json` or `X-Sanbox-Request: 1` (else 415), a foreign
// Origin is refused (403) unless configured, and a refused request changes nothing.
import { describe, it, expect, afterEach } from 'vitest';
import { LinkEmulator, LinkApiServer } from '../../../src/link/index.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function start(allowedOrigins?: string[]): Promise<{ emu: LinkEmulator; url: string }> {
  const emu = new LinkEmulator({
    name: 'l1',
    a: 'alpha',
    b: 'bravo',
    // nothing connects through it here: the target is never dialled
    routes: [{ name: 'to-b', listen: { host: '127.0.0.1', port: 0 }, target: { host: '127.0.0.1', port: 9 }, forward: 'a-to-b' }],
  });
  await emu.start();
  cleanups.push(() => emu.stop());
  const api = new LinkApiServer({ emulator: emu, ...(allowedOrigins ? { allowedOrigins } : {}) });
  const { url } = await api.listen();
  cleanups.push(() => api.close());
  return { emu, url };
}

async function send(url: string, path: string, headers: Record<string, string>, body?: string) {
  const res = await fetch(url + path, { method: 'POST', headers, body });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined };
}

const EVIL = 'http://evil.example';

describe('link API: requests a browser sends cross-origin without a preflight', () => {
  it('refuses them with 415 or 403 and changes nothing', async () => {
    const { emu, url } = await start();
    const before = emu.status();
    const cases: [string, string, Record<string, string>, string | undefined, number, string][] = [
      ['text/plain cut from a foreign page, empty body', '/v1/cut', { Origin: EVIL, 'Content-Type': 'text/plain' }, '', 403, 'forbidden-origin'],
      ['JSON set from a foreign page', '/v1/set', { Origin: EVIL, 'Content-Type': 'application/json' }, '{"latencyMs":500}', 403, 'forbidden-origin'],
      ['text/plain cut, empty body', '/v1/cut', { 'Content-Type': 'text/plain' }, '', 415, 'unsupported-media-type'],
      ['no content type, no body', '/v1/cut', {}, undefined, 415, 'unsupported-media-type'],
      ['a form', '/v1/cut', { 'Content-Type': 'application/x-www-form-urlencoded' }, 'direction=both', 415, 'unsupported-media-type'],
      ['text/plain body holding JSON', '/v1/set', {}, '{"latencyMs":500}', 415, 'unsupported-media-type'],
    ];
    const got: [string, number, string | undefined][] = [];
    for (const [what, path, headers, body] of cases) {
      const r = await send(url, path, headers, body);
      got.push([what, r.status, r.json?.error?.code]);
    }
    expect(got).toEqual(cases.map(([what, , , , status, code]) => [what, status, code]));
    const after = emu.status();
    expect(after.cut).toEqual(before.cut);
    expect(after.settings).toEqual(before.settings);
    expect(after.lastEventSeq).toBe(before.lastEventSeq);
  });

  it('GET status answers whatever the origin', async () => {
    const { url } = await start();
    const r = await fetch(url + '/v1/status', { headers: { Origin: EVIL } });
    expect(r.status).toBe(200);
  });

  it('accepts JSON without a body, X-Sanbox-Request: 1, its own origin and a configured one', async () => {
    const { emu, url } = await start(['http://dash.example:8480']);
    let r = await send(url, '/v1/cut', { 'Content-Type': 'application/json' });
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    expect(emu.status().cut).toEqual({ 'a-to-b': true, 'b-to-a': true });
    r = await send(url, '/v1/restore', { 'X-Sanbox-Request': '1' });
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    expect(emu.status().cut).toEqual({ 'a-to-b': false, 'b-to-a': false });
    r = await send(url, '/v1/set', { 'Content-Type': 'application/json; charset=utf-8', Origin: url }, '{"latencyMs":7}');
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    r = await send(url, '/v1/cut', { 'Content-Type': 'application/json', Origin: 'http://dash.example:8480' }, '{"direction":"a-to-b"}');
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    expect(emu.status().cut).toEqual({ 'a-to-b': true, 'b-to-a': false });
    expect(emu.status().settings['a-to-b'].latencyMs).toBe(7);
  });
});
