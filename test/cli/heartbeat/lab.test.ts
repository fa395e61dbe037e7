// A two-site lab with heartbeats (seed 004), as processes: `sanbox up --detach` starts the arrays,
// the link emulators (the arrays' link, the agents' hb-net, the witness links), the witness and
// the agents; the tests cut paths, send notices, install and uninstall a heartbeat mirror, and
// partition or fail the production site, and check that only a real loss fails over, within the
// timeout, and that a partition never leaves two writable sides.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { labCli } from '../../support/lab-cli.js';
import { freePort } from '../../support/net.js';
import { NbdClient } from '../../../src/check/nbd-client/index.js';
import { TABLE_BLOCK_BYTES, TABLE_OFFSET, decodeTableBlock } from '../../../src/heartbeat/index.js';

const INTERVAL_MS = 300;
const TIMEOUT_INTERVALS = 6;
const TIMEOUT_MS = INTERVAL_MS * TIMEOUT_INTERVALS;

const labYaml = (name: string, p: number[], witness: boolean) => `
lab: ${name}
arrays:
  - name: alpha
    nbd: { port: ${p[0]} }
    api: { port: ${p[1]} }
    remoteLink: { port: ${p[2]} }
    luns: [{ name: disk0, size: 8M }, { name: hb0, size: 1M }, { name: hb1, size: 1M }, { name: hb2, size: 1M }, { name: rhb0, size: 1M }]
  - name: bravo
    nbd: { port: ${p[3]} }
    api: { port: ${p[4]} }
    remoteLink: { port: ${p[5]} }
    luns: [{ name: disk0, size: 8M }, { name: hb0, size: 1M }, { name: hb1, size: 1M }, { name: hb2, size: 1M }, { name: rhb0, size: 1M }]
links:
  - { name: ab, between: [alpha, bravo], secret: heartbeat-test-link-secret }
mirrors:
  - { name: m0, primary: alpha:disk0, secondaries: [bravo:disk0] }
  - { name: hb0, primary: alpha:hb0, secondaries: [bravo:hb0], secondaryReads: true }
  - { name: hb1, primary: alpha:hb1, secondaries: [bravo:hb1], secondaryReads: true }
  - { name: hb2, primary: alpha:hb2, secondaries: [bravo:hb2], secondaryReads: true }
  - { name: rhb0, primary: bravo:rhb0, secondaries: [alpha:rhb0], secondaryReads: true }
dashboard: off
heartbeat:
  cluster: test
  production: alpha
  standby: bravo
  interval: ${INTERVAL_MS}ms
  timeout: ${TIMEOUT_INTERVALS}
  recoverAfter: 2
  hosts:
    - { name: alpha-1, site: alpha }
    - { name: alpha-2, site: alpha }
    - { name: bravo-1, site: bravo }
  mirrors: [hb0, hb1]
  reverseMirrors: [rhb0]
${witness ? '  witness: { port: 0 }\n' : ''}  failover: { promote: [m0] }
  actions:
    SYSTEM DOWN: 'echo "$SANBOX_HB_LEVEL $SANBOX_HB_COMPONENT" >> "$SANBOX_IMAGES/pager.log"'
    SERIOUS: 'echo "$SANBOX_HB_LEVEL $SANBOX_HB_COMPONENT" >> "$SANBOX_IMAGES/pager.log"'
`;

let dir = '';
const sanbox = labCli(() => dir);

interface Status {
  host: string;
  isMaster: boolean;
  serial: number;
  fenced: boolean;
  failedOver: { detectionMs: number | null; promoteMs: number; promoted: string[] } | null;
  table: { networkEnable: string; remoteGroupStatusByNetwork: string; remoteGroupStatusByMirror: string; devices: { mirror: string | null; status: string }[] };
}

function status(host: string): Status {
  const r = sanbox(['hb', 'status', '--host', host, '--json']);
  expect(r.code, r.err).toBe(0);
  return r.json.hosts[0].status as Status;
}

async function until<T>(what: string, fn: () => T | undefined | false, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

interface HbEvent {
  type: string;
  time: string;
  [k: string]: unknown;
}

async function agentEvents(host: string): Promise<HbEvent[]> {
  const lab = JSON.parse(await readFile(join(dir, '.labs', `${labName}.json`), 'utf8'));
  const url = lab.heartbeat.hosts.find((h: { name: string }) => h.name === host).url;
  const r = await fetch(`${url}/v1/events`, { headers: { Accept: 'application/json' } });
  return ((await r.json()) as { events: HbEvent[] }).events;
}

let labName = '';

/** Distinct free ports (the heartbeat needs fixed array ports: agents keep the addresses they start with). */
async function freePorts(n: number): Promise<number[]> {
  const out = new Set<number>();
  while (out.size < n) out.add(await freePort());
  return [...out];
}

/** `witness`: without one, only the paths themselves keep the standby from failing over. */
async function up(name: string, witness = true): Promise<void> {
  labName = name;
  dir = await mkdtemp(join(tmpdir(), 'sanbox-hb-'));
  await writeFile(join(dir, 'lab.yaml'), labYaml(name, await freePorts(6), witness));
  const r = sanbox(['up', join(dir, 'lab.yaml'), '--detach'], 120_000);
  expect(r.code, r.out + r.err).toBe(0);
  await until('both sites see each other on every path', () => {
    const s = status('bravo-1');
    const p = status('alpha-1');
    return s.isMaster && p.isMaster && s.table.remoteGroupStatusByNetwork === 'ALIVE' && s.table.remoteGroupStatusByMirror === 'ALIVE' && p.table.remoteGroupStatusByMirror === 'ALIVE';
  });
}

async function down(): Promise<void> {
  if (!dir) return;
  sanbox(['down', labName], 60_000);
  if (!process.env.SANBOX_KEEP) await rm(dir, { recursive: true, force: true });
  dir = '';
}

describe('heartbeat lab: single-path faults, notices, non-stop install', () => {
  beforeAll(() => up('hbt1', false), 180_000);
  afterAll(() => down(), 90_000);

  it('an installed heartbeat mirror refuses a fracture', () => {
    const r = sanbox(['mirror', 'fracture', 'hb0', '--array', 'alpha', '--json']);
    expect(r.code).toBe(1);
    expect(r.out + r.err).toContain('heartbeat-installed');
  });

  it("the production master's status table is on its heartbeat volumes, and so at the standby", async () => {
    const lab = JSON.parse(await readFile(join(dir, '.labs', `${labName}.json`), 'utf8'));
    const b = lab.arrays.find((x: { name: string }) => x.name === 'bravo').nbd;
    const c = await NbdClient.connect(`nbd://${b.host}:${b.port}/hb0`);
    // The master writes its table after a change: on a loaded machine the first write (and the
    // mirror's initial synchronization that carries it) may still be under way when both sites
    // already see each other.
    let r = decodeTableBlock(await c.read(TABLE_OFFSET, TABLE_BLOCK_BYTES));
    for (const end = Date.now() + 20_000; !r.ok && Date.now() < end; r = decodeTableBlock(await c.read(TABLE_OFFSET, TABLE_BLOCK_BYTES))) await new Promise((res) => setTimeout(res, 150));
    await c.close();
    const saves = (await agentEvents('alpha-1')).filter((e) => e.type.startsWith('hb.table-save') || e.type === 'hb.master');
    expect(r.ok ? r.table.devices.filter((d) => d.status !== 'NULL').map((d) => d.mirror) : r, JSON.stringify(saves)).toEqual(['rhb0']);
  });

  it('a cut network is one failed path: the mirrors keep the production alive, nothing fails over; restored, it recovers', async () => {
    expect(sanbox(['link', 'cut', 'hb-net']).code).toBe(0);
    await until('the network path FAILED', () => status('bravo-1').table.networkEnable === 'FAILED');
    await new Promise((r) => setTimeout(r, TIMEOUT_MS));
    const s = status('bravo-1');
    expect(s.table.remoteGroupStatusByMirror).toBe('ALIVE');
    expect(s.failedOver).toBeNull();
    expect(status('alpha-1').fenced).toBe(false);
    expect(sanbox(['link', 'restore', 'hb-net']).code).toBe(0);
    await until('the network path recovered', () => status('bravo-1').table.networkEnable === 'ENABLE');
    const ev = await agentEvents('bravo-1');
    expect(ev.filter((e) => e.type === 'hb.table' && e.field === 'networkEnable').map((e) => [e.from, e.to])).toEqual([
      ['ENABLE', 'FAILED'],
      ['FAILED', 'ENABLE'],
    ]);
    expect(ev.some((e) => e.type === 'hb.failover')).toBe(false);
  });

  it('a notice of each level reaches the standby; the configured levels run their command', async () => {
    for (const level of ['SYSTEM DOWN', 'SERIOUS', 'MODERATE', 'TEMPORALLY']) {
      const r = sanbox(['hb', 'notify', '--component', `c-${level.split(' ')[0]}`, '--kind', 'lun', '--level', level, '--details', `a ${level} test`]);
      expect(r.code, r.err).toBe(0);
    }
    // only this test's notices: the production's own watch may add one of its own meanwhile (an
    // array API slower than the interval on a loaded machine is `array:NAME`)
    const got = await until('four notices at bravo-1', () => {
      const all = sanbox(['hb', 'notices', '--host', 'bravo-1', '--json']).json?.notices as { level: string; componentId: string }[] | undefined;
      const n = all?.filter((x) => x.componentId.startsWith('c-'));
      return n && n.length === 4 ? n : undefined;
    });
    expect(got.map((n) => n.level)).toEqual(['SYSTEM DOWN', 'SERIOUS', 'MODERATE', 'TEMPORALLY']);
    const pager = join(dir, 'pager.log');
    const paged = () => (existsSync(pager) ? readFileSync(pager, 'utf8').trim().split('\n').filter((l) => / c-/.test(l)) : []);
    await until('two pager lines', () => paged().length >= 2);
    expect(paged()).toEqual(['SYSTEM DOWN c-SYSTEM', 'SERIOUS c-SERIOUS']);
    expect(sanbox(['hb', 'notify', '--component', 'x', '--kind', 'lun', '--level', 'BAD']).code).toBe(2);
  });

  it('a crashed production array is noticed (SYSTEM DOWN, then TEMPORALLY when it is back) and is no site loss while the network lives', async () => {
    expect(sanbox(['fault', 'array-crash', 'alpha']).code).toBe(0);
    const notices = () => (sanbox(['hb', 'notices', '--host', 'bravo-1', '--json']).json?.notices ?? []) as { level: string; componentId: string; details: string }[];
    await until('the SYSTEM DOWN notice of array alpha', () => notices().some((n) => n.componentId === 'array:alpha' && n.level === 'SYSTEM DOWN'));
    await until('the heartbeat mirrors FAILED', () => status('bravo-1').table.remoteGroupStatusByMirror === 'FAILED');
    expect(status('bravo-1').table.remoteGroupStatusByNetwork).toBe('ALIVE');
    expect(status('bravo-1').failedOver).toBeNull();
    expect(sanbox(['fault', 'array-restart', 'alpha'], 120_000).code).toBe(0);
    await until('the TEMPORALLY notice', () => notices().some((n) => n.componentId === 'array:alpha' && n.level === 'TEMPORALLY'), 60_000);
    await until('the heartbeat mirrors ALIVE again', () => status('bravo-1').table.remoteGroupStatusByMirror === 'ALIVE', 60_000);
    expect(status('bravo-1').failedOver).toBeNull();
  }, 180_000);

  it('installs and uninstalls a heartbeat mirror without a missed cycle', async () => {
    const before = status('bravo-1');
    const fromSeq = Math.max(0, ...(await agentEvents('bravo-1')).map((e) => e.seq as number));
    expect(sanbox(['hb', 'install', 'hb2']).code).toBe(0);
    await until('hb2 in the standby table', () => status('bravo-1').table.devices.some((d) => d.mirror === 'hb2' && d.status === 'ENABLE'));
    expect(sanbox(['mirror', 'fracture', 'hb2', '--array', 'alpha']).code).toBe(1);
    expect(sanbox(['hb', 'uninstall', 'hb2']).code).toBe(0);
    await until('hb2 gone', () => !status('bravo-1').table.devices.some((d) => d.mirror === 'hb2'));
    expect(sanbox(['mirror', 'fracture', 'hb2', '--array', 'alpha']).code).toBe(0);
    const ev = await agentEvents('bravo-1');
    // no path failed while the mirror came and went, and the standby kept heartbeating
    expect(ev.filter((e) => (e.seq as number) > fromSeq && e.type === 'hb.table' && e.to === 'FAILED')).toEqual([]);
    expect(status('bravo-1').serial).toBeGreaterThan(before.serial);
  });
});

describe('heartbeat lab: losses', () => {
  afterAll(() => down(), 90_000);

  it('a production cut off from the standby and the witness fences itself before the standby takes over', async () => {
    await up('hbt2');
    for (const l of ['ab', 'hb-net', 'hb-witness-alpha']) expect(sanbox(['link', 'cut', l]).code).toBe(0);
    const t0 = Date.now(); // the production is isolated from here (each cut is a process of its own)
    await until('the standby failed over', () => status('bravo-1').failedOver);
    const prod = await agentEvents('alpha-1');
    const stby = await agentEvents('bravo-1');
    const fencedAt = Date.parse(prod.find((e) => e.type === 'hb.fenced')!.time);
    const failoverAt = Date.parse(stby.find((e) => e.type === 'hb.failover-started')!.time);
    expect(fencedAt).toBeLessThan(failoverAt);
    expect(fencedAt - t0).toBeLessThan(TIMEOUT_MS);
    // the fenced primary refuses host writes; the promoted side takes them
    const lab = JSON.parse(await readFile(join(dir, '.labs', 'hbt2.json'), 'utf8'));
    const nbd = (a: string) => lab.arrays.find((x: { name: string }) => x.name === a).nbd;
    const alpha = await NbdClient.connect(`nbd://${nbd('alpha').host}:${nbd('alpha').port}/disk0`);
    await expect(alpha.write(0, Buffer.alloc(4096, 1))).rejects.toThrow(/EPERM/);
    await alpha.close();
    const bravo = await NbdClient.connect(`nbd://${nbd('bravo').host}:${nbd('bravo').port}/disk0`);
    await bravo.write(0, Buffer.alloc(4096, 2));
    await bravo.close();
    await down();
  }, 180_000);

  it('a failed production site fails over within the timeout, one interval and the promote', async () => {
    await up('hbt3');
    const r = sanbox(['fault', 'site-fail', 'alpha', '--json']);
    expect(r.code, r.err).toBe(0);
    expect(r.json.hostsKilled).toEqual(['alpha-1', 'alpha-2']);
    const events = (await readFile(join(dir, '.labs', 'hbt3.events.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    const failedAt = Date.parse(events.find((e: HbEvent) => e.type === 'site.failed').time);
    await until('the standby failed over', () => status('bravo-1').failedOver);
    const s = status('bravo-1');
    expect(s.failedOver!.promoted).toEqual(['m0']);
    const done = Date.parse((await agentEvents('bravo-1')).find((e) => e.type === 'hb.failover')!.time);
    const tookMs = done - failedAt;
    process.stdout.write(`site loss -> failover: ${tookMs} ms (timeout ${TIMEOUT_MS} ms, interval ${INTERVAL_MS} ms, promote ${s.failedOver!.promoteMs} ms)\n`);
    expect(tookMs).toBeLessThanOrEqual(TIMEOUT_MS + INTERVAL_MS + s.failedOver!.promoteMs + 250);
  }, 180_000);
});
