// Heartbeat mirrors (POST /v1/mirrors/REF/heartbeat, `sanbox mirror heartbeat`): two real arrays
// joined by a link emulator, each with a real management API (ControlServer over its mirror
// driver). While installed, every verb that would stop the heartbeats is refused with 409
// `heartbeat-installed` naming the agent (fracture, remove-secondary, deactivate, destroy,
// promote on the secondary's array, forced or not, and a consistency group taking it); installing
// is refused on a group member, a mirror without a secondary; the flag survives a restart;
// uninstalling lets a fracture through.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ControlServer } from '../../../src/control/index.js';
import { captureCli } from '../../support/cli.js';
import { makeLab, until, type Lab } from '../../support/mirror-lab.js';

let lab: Lab;
const servers: Record<string, { srv: ControlServer; url: string }> = {};

async function serveApi(name: string): Promise<void> {
  await servers[name]?.srv.close();
  const r = lab.sites[name]!.running!;
  const srv = new ControlServer({ array: r.array, mirrors: r.mirrors });
  servers[name] = { srv, url: (await srv.listen()).url };
}

async function req(array: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(servers[array]!.url + path, { method, body: body === undefined ? undefined : JSON.stringify(body), headers: { 'Content-Type': 'application/json' } });
  const t = await res.text();
  return { status: res.status, json: t ? JSON.parse(t) : undefined };
}
const hb = (array: string, body: unknown, ref = 'hb') => req(array, 'POST', `/v1/mirrors/${ref}/heartbeat`, body);
const record = async (array: string, ref = 'hb') => (await req(array, 'GET', `/v1/mirrors/${ref}`)).json.record;

function expectHeartbeatRefusal(r: { status: number; json: any }, what: string): void {
  expect(r.status, `${what}: ${JSON.stringify(r.json)}`).toBe(409);
  expect(r.json.error.code, what).toBe('heartbeat-installed');
  expect(r.json.error.message, what).toMatch(/installed by agent-1/);
  expect(r.json.error.message, what).toMatch(/[Uu]ninstall it first/);
}

beforeAll(async () => {
  lab = await makeLab(['alpha', 'bravo'], [
    { name: 'hb', size: 1024 * 1024 },
    { name: 'data', size: 1024 * 1024 },
    { name: 'lonely', size: 1024 * 1024 },
  ], { timers: { reconnectMaxMs: 300 } });
  const n = lab.node('alpha');
  for (const lun of ['hb', 'data']) {
    await n.create({ lun, name: lun, attributes: { allowSecondaryReads: true } });
    await n.addSecondary(lun, { array: 'bravo', lun, synchronized: true });
  }
  await n.create({ lun: 'lonely', name: 'lonely' });
  await until(() => ['hb', 'data'].every((m) => n.get(m).images[1]!.link === 'connected'), 10_000, 'links');
  await n.groups.create({ name: 'g-data', members: ['data'], attributes: { mode: 'synchronous' } });
  await serveApi('alpha');
  await serveApi('bravo');
}, 60_000);
afterAll(async () => {
  for (const s of Object.values(servers)) await s.srv.close();
  await lab?.close();
});

describe('heartbeat mirrors', { timeout: 60_000 }, () => {
  it('refuses bad requests (400), unknown mirrors (404) and unfit mirrors (409 heartbeat-refused), changing nothing', async () => {
    const bad: Array<[unknown, RegExp]> = [
      [{}, /missing field installed/],
      [{ installed: true }, /missing field by/],
      [{ installed: 'yes', by: 'a' }, /installed must be true or false/],
      [{ installed: true, by: 7 }, /by must be a non-empty string/],
      [{ installed: true, by: '' }, /by must be a non-empty string/],
      [{ installed: true, by: 'a', force: true }, /unknown field force/],
      [[true], /JSON object/],
    ];
    for (const [body, msg] of bad) {
      const r = await hb('alpha', body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.json.error.code).toBe('invalid-argument');
      expect(r.json.error.message).toMatch(msg);
    }
    expect((await req('alpha', 'POST', '/v1/mirrors/hb/heartbeat?x=1', { installed: true, by: 'a' })).status).toBe(400);
    const missing = await hb('alpha', { installed: true, by: 'agent-1' }, 'nope');
    expect(missing.status).toBe(404);
    expect(missing.json.error.code).toBe('not-found');
    const inGroup = await hb('alpha', { installed: true, by: 'agent-1' }, 'data');
    expect(inGroup.status).toBe(409);
    expect(inGroup.json.error).toMatchObject({ code: 'heartbeat-refused', message: expect.stringMatching(/member of consistency group g-data/) });
    const noSecondary = await hb('alpha', { installed: true, by: 'agent-1' }, 'lonely');
    expect(noSecondary.status).toBe(409);
    expect(noSecondary.json.error).toMatchObject({ code: 'heartbeat-refused', message: expect.stringMatching(/no secondary/) });
    const onSecondary = await hb('bravo', { installed: true, by: 'agent-1' });
    expect(onSecondary.json.error.code).toBe('not-primary');
    for (const m of ['hb', 'data', 'lonely']) expect((await record('alpha', m)).heartbeat).toBeUndefined();
    expect(lab.events('alpha', 'mirror.heartbeat-installed')).toEqual([]);
  });

  it('installed: fracture, remove-secondary, deactivate, destroy, group-add and promote are refused', async () => {
    const r = await hb('alpha', { installed: true, by: 'agent-1' });
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    expect(r.json.record.heartbeat).toMatchObject({ installed: true, by: 'agent-1' });
    expect(lab.events('alpha', 'mirror.heartbeat-installed')).toMatchObject([{ mirrorId: r.json.record.mirrorId, by: 'agent-1' }]);
    // the same agent again: nothing changes; another agent: refused
    expect((await hb('alpha', { installed: true, by: 'agent-1' })).status).toBe(200);
    expect(lab.events('alpha', 'mirror.heartbeat-installed')).toHaveLength(1);
    expectHeartbeatRefusal(await hb('alpha', { installed: true, by: 'agent-2' }), 'install by another agent');
    const gen = (await record('alpha')).generation;

    expectHeartbeatRefusal(await req('alpha', 'POST', '/v1/mirrors/hb/fracture', {}), 'fracture');
    expectHeartbeatRefusal(await req('alpha', 'POST', '/v1/mirrors/hb/fracture', { image: 'bravo' }), 'fracture of one image');
    expectHeartbeatRefusal(await req('alpha', 'DELETE', '/v1/mirrors/hb/secondaries/bravo?force=true'), 'remove-secondary');
    expectHeartbeatRefusal(await req('alpha', 'POST', '/v1/mirrors/hb/deactivate', { force: true }), 'deactivate');
    expectHeartbeatRefusal(await req('alpha', 'DELETE', '/v1/mirrors/hb'), 'destroy');
    expectHeartbeatRefusal(await req('alpha', 'POST', '/v1/groups', { name: 'g-hb', members: ['hb'] }), 'group-add');
    // the secondary's array holds the record with the flag: a promote there is refused, forced or not
    await until(async () => (await record('bravo')).heartbeat !== undefined, 10_000, 'the flag on bravo');
    expectHeartbeatRefusal(await req('bravo', 'POST', '/v1/mirrors/hb/promote', {}), 'promote');
    expectHeartbeatRefusal(await req('bravo', 'POST', '/v1/mirrors/hb/promote', { force: true }), 'forced promote');

    const after = await record('alpha');
    expect(after.generation).toBe(gen);
    expect(after.images.find((i: any) => i.role === 'secondary')).toMatchObject({ fractured: false, array: 'bravo' });
    expect(after.state).toBe('ACTIVE');
    expect((await record('bravo')).images.find((i: any) => i.role === 'primary').array).toBe('alpha');
    expect((await req('alpha', 'GET', '/v1/groups')).json.groups.map((g: any) => g.record.name)).toEqual(['g-data']);
  });

  it('`sanbox mirror status` shows it; the flag survives a restart of the array', async () => {
    const env = { SANBOX_LAB: undefined, SANBOX_API: undefined };
    const st = await captureCli(['mirror', 'status', 'hb', '--api', servers.alpha!.url], env);
    expect(st.code, st.err).toBe(0);
    expect(st.out).toMatch(/heartbeat mirror: installed by agent-1 since /);
    const before = (await record('alpha')).heartbeat;
    await servers.alpha!.srv.close();
    await lab.stop('alpha');
    await lab.start('alpha');
    await serveApi('alpha');
    expect((await record('alpha')).heartbeat).toEqual(before);
    expectHeartbeatRefusal(await req('alpha', 'POST', '/v1/mirrors/hb/fracture', {}), 'fracture after the restart');
  });

  it('`sanbox mirror heartbeat`: usage errors exit 2, refusals 1; uninstalled, a fracture goes through', async () => {
    const env = { SANBOX_LAB: undefined, SANBOX_API: undefined };
    const url = servers.alpha!.url;
    expect((await captureCli(['mirror', 'heartbeat', 'hb', '--api', url], env)).code).toBe(2);
    expect((await captureCli(['mirror', 'heartbeat', 'hb', '--install', '--uninstall', '--api', url], env)).code).toBe(2);
    const other = await captureCli(['mirror', 'heartbeat', 'hb', '--install', '--by', 'agent-2', '--api', url], env);
    expect(other.code).toBe(1);
    expect(other.err).toMatch(/installed by agent-1/);
    const frac = await captureCli(['mirror', 'fracture', 'hb', '--api', url], env);
    expect(frac.code).toBe(1);
    expect(frac.err).toMatch(/heartbeat mirror installed by agent-1/);
    const un = await captureCli(['mirror', 'heartbeat', 'hb', '--uninstall', '--by', 'agent-1', '--json', '--api', url], env);
    expect(un.code, un.err).toBe(0);
    expect(un.json.record.heartbeat).toBeUndefined();
    expect(lab.events('alpha', 'mirror.heartbeat-uninstalled')).toMatchObject([{ by: 'agent-1', installedBy: 'agent-1' }]);
    await until(async () => (await record('bravo')).heartbeat === undefined, 10_000, 'the flag gone on bravo');
    const ok = await req('alpha', 'POST', '/v1/mirrors/hb/fracture', {});
    expect(ok.status, JSON.stringify(ok.json)).toBe(200);
    expect(ok.json.record.images.find((i: any) => i.role === 'secondary').fractured).toBe(true);
    // installing needs nothing but a synchronous mirror with a secondary outside groups: a fractured one is fine
    const again = await captureCli(['mirror', 'heartbeat', 'hb', '--install', '--by', 'agent-3', '--api', url], env);
    expect(again.code, again.err).toBe(0);
    expect(again.out).toMatch(/is a heartbeat mirror, installed by agent-3/);
  });
});
