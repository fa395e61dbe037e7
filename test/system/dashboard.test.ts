// The lab's web dashboard as a person uses it: `sanbox up --detach` a small lab (a two-SP array
// and a single-process one, a link, a mirror and a consistency group), open the dashboard in
// headless Chromium (Debian's, driven by playwright-core; nothing downloads a browser), and check
// that the page says what `sanbox status --json` says, follows a `sanbox link cut` within 2 s,
// maps a fracture log over the LUN, plots write latency while a client writes, and that its
// fault buttons (link, latency, SP, power, array) act and the state follows. No console error at any point. Screenshots go to test-results/dashboard/ (look at them).
// Skipped, with the reason, where /usr/bin/chromium is missing (CI installs it).
import { existsSync, mkdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NbdClient } from '../../src/check/nbd-client/index.js';
import { DashboardServer, type DashboardLab } from '../../src/dashboard/index.js';
import type { LabState } from '../../src/cli/lab.js';
import { labCli } from '../support/lab-cli.js';
import { freePort } from '../support/net.js';
import { REPO, requireBuild } from '../support/paths.js';

const CHROMIUM = '/usr/bin/chromium';
const have = existsSync(CHROMIUM);
if (!have) console.warn(`dashboard browser test skipped: ${CHROMIUM} missing (apt-get install chromium)`);
const SHOTS = join(REPO, 'test-results', 'dashboard');

let tmp: string;
const cli = labCli(() => tmp);
let browser: Browser;
let page: Page;
let state: LabState;
const problems: string[] = [];
const foreignRequests: string[] = [];

beforeAll(async () => {
  if (!have) return;
  requireBuild('dashboard/index.js');
  mkdirSync(SHOTS, { recursive: true });
  tmp = await mkdtemp(join(tmpdir(), 'sanbox-dashboard-'));
  const [ra, rb] = [await freePort(), await freePort()];
  const file = join(tmp, 'dash.yaml');
  await writeFile(
    file,
    `lab: dash
arrays:
  - name: alpha
    nbd: { port: 0 }
    api: { port: 0 }
    remoteLink: { port: ${ra} }
    sps: { cacheSize: 8M }
    luns: [{ name: disk0, size: 16M }, { name: disk1, size: 8M }]
  - name: bravo
    nbd: { port: 0 }
    api: { port: 0 }
    remoteLink: { port: ${rb} }
    luns: [{ name: disk0, size: 16M }, { name: disk1, size: 8M }]
links:
  - { name: ab, between: [alpha, bravo], listen: { toB: 0, toA: 0 }, api: { port: 0 }, latency: 1, secret: dashboard-test-secret-0123 }
mirrors:
  - { name: m0, primary: alpha:disk0, secondaries: [bravo:disk0] }
  - { name: m1, primary: alpha:disk1, secondaries: [bravo:disk1] }
groups:
  - { name: g0, members: [m1], mode: asynchronous }
monitor:
  resources: [{ group: m0, interval: 2 }]
`,
  );
  const up = cli(['up', file, '--detach', '--json', '--timeout', '60'], 90_000);
  expect(up.code, up.err + up.out).toBe(0);
  state = up.json as LabState;
  expect(state.dashboard?.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  page = await browser.newPage({ viewport: { width: 1400, height: 1100 } });
  page.on('console', (m) => m.type() === 'error' && problems.push(`console: ${m.text()}`));
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('request', (r) => !r.url().startsWith(state.dashboard!.url) && foreignRequests.push(r.url()));
}, 120_000);

afterAll(async () => {
  await browser?.close();
  if (tmp) {
    cli(['down', 'dash', '--timeout', '20'], 40_000);
    await rm(tmp, { recursive: true, force: true });
  }
});

/** A full-page screenshot from the top (the sticky header would be drawn mid-page otherwise). */
async function shot(name: string): Promise<void> {
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: join(SHOTS, name), fullPage: true });
}
const attr = (sel: string, name: string) => page.locator(sel).first().getAttribute(name, { timeout: 1000 }).catch(() => null);

/** Polls `fn` until it holds; `ms` bounds the wait (generous: a loaded CI machine delivers events late). */
async function until(what: string, fn: () => Promise<boolean>, ms: number): Promise<number> {
  const t0 = Date.now();
  while (!(await fn())) {
    if (Date.now() - t0 > ms) throw new Error(`dashboard: timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return Date.now() - t0;
}

describe.skipIf(!have)('the lab dashboard in Chromium', () => {
  it('shows the topology of sanbox status --json, with every asset from its own server', async () => {
    await page.goto(state.dashboard!.url);
    await page.waitForSelector('[data-array="bravo"]', { timeout: 15_000 });
    await page.waitForSelector('#live.ok', { timeout: 10_000 });
    for (const a of state.arrays) {
      const st = cli(['status', '--lab', 'dash', '--array', a.name, '--json']);
      expect(st.code, st.err).toBe(0);
      const status = st.json as { array: string; luns: { name: string }[]; sps?: { name: string; state: string }[] };
      expect(await attr(`[data-array="${a.name}"]`, 'data-state')).toBe('running');
      const text = await page.locator(`[data-array="${a.name}"]`).textContent();
      for (const l of status.luns) expect(text).toContain(l.name);
      for (const sp of status.sps ?? []) expect(await attr(`[data-sp="${a.name}/${sp.name}"]`, 'data-state'), `${a.name} SP ${sp.name}`).toBe(sp.state);
      expect(await page.locator(`[data-sp^="${a.name}/"]`).count()).toBe(status.sps?.length ?? 0);
    }
    expect(await page.locator('[data-array]').count()).toBe(2);
    // sanbox status names the dashboard too
    expect((cli(['status', '--lab', 'dash', '--json']).json as { dashboard?: string }).dashboard).toBe(state.dashboard!.url);
    expect(await attr('[data-link="ab"]', 'data-state')).toBe('up');
    await until('the mirrors and the group', async () => (await page.locator('[data-mirror^="m0/"]').count()) === 1 && (await page.locator('[data-group="g0"]').count()) === 1, 10_000);
    expect(await page.locator('[data-mirror^="m0/"]').textContent()).toContain('bravo:disk0');
    // the lab's pair resync monitor, as chkmon -show says
    await until('the monitor shows m0 in PAIR', async () => (await attr('[data-resource="dash/m0"]', 'data-pair')) === 'connected', 15_000);
    expect(await page.locator('[data-resource="dash/m0"]').textContent()).toContain('PAIR (connected)');
    await shot('1-overview.png');
    expect(foreignRequests).toEqual([]);
    expect(problems).toEqual([]);
  });

  it('turns the link red within 2 s of `sanbox link cut`, and its Restore button restores it', async () => {
    const cut = cli(['link', 'cut', 'ab', '--lab', 'dash']);
    expect(cut.code, cut.err).toBe(0);
    const ms = await until('the link drawn cut', async () => (await attr('[data-link="ab"]', 'data-state')) === 'cut', 2000);
    expect(ms).toBeLessThan(2000);
    expect(await page.locator('[data-link="ab"] line').getAttribute('stroke')).toBe('#d93025');
    await until('the link.cut event in the log', async () => (await page.locator('#events tr[data-type="link.cut"]').count()) > 0, 15_000);
    await shot('2-link-cut.png');
    await page.click('[data-action="link-restore/ab"]');
    await until('the link up again', async () => (await attr('[data-link="ab"]', 'data-state')) === 'up', 15_000);
    const ls = cli(['link', 'status', 'ab', '--lab', 'dash', '--json']);
    expect((ls.json as { state: string }).state).toBe('up');
    expect(problems).toEqual([]);
  });

  it('maps the fracture log of a cut link over the LUN, sets the link latency, and the map clears after the resync', async () => {
    expect(cli(['link', 'cut', 'ab', '--lab', 'dash']).code).toBe(0);
    const spA = state.arrays.find((a) => a.name === 'alpha')!.sps!.find((s) => s.name === 'A')!;
    const client = await NbdClient.connect(`nbd://127.0.0.1:${spA.port}/disk0`);
    try {
      // 1 MiB at 4 MiB of a 16 MiB LUN: the cells are 1 MiB (a write-intent extent), so exactly cell 4
      await client.write(4 << 20, Buffer.alloc(1 << 20, 0x5a));
      await client.flush();
    } finally {
      await client.close();
    }
    const fracture = '[data-heatmap="m0/fracture/bravo:0"]';
    await until('one dirty cell in the fracture log of bravo', async () => (await attr(fracture, 'data-dirty-cells')) === '1', 15_000);
    await until('the monitor shows m0 suspended', async () => (await attr('[data-resource="dash/m0"]', 'data-pair')) === 'suspended', 15_000);
    await until("the monitor's event in the log", async () => (await page.locator('#events tr[data-type="resource.state"]').count()) > 0, 10_000);
    expect(await page.locator(`${fracture} rect`).count()).toBe(16);
    const fills = await page.locator(`${fracture} rect`).evaluateAll((rs) => rs.map((r) => r.getAttribute('fill')));
    expect(fills.filter((f) => f !== fills[0]).length).toBe(1);
    expect(fills[4]).not.toBe(fills[0]);
    expect(await attr('[data-heatmap="m1/fracture/bravo:1"]', 'data-dirty-cells')).toBe('0');
    await shot('2b-region-maps.png');
    // the latency control sets both directions of the emulator
    await page.selectOption('[data-action="link-latency/ab"]', '5');
    await until('5 ms one way on the link', async () => {
      const ls = cli(['link', 'status', 'ab', '--lab', 'dash', '--json']).json as { settings: Record<string, { latencyMs: number }> };
      return ls.settings['a-to-b']!.latencyMs === 5 && ls.settings['b-to-a']!.latencyMs === 5;
    }, 5000);
    await page.selectOption('[data-action="link-latency/ab"]', '1');
    await page.click('[data-action="link-restore/ab"]');
    await until('the fracture log resynchronized and the map clean', async () => (await attr(fracture, 'data-dirty-cells')) === '0', 30_000);
    expect(problems).toEqual([]);
  });

  it('plots write IOPS and latency while a client writes', async () => {
    const spA = state.arrays.find((a) => a.name === 'alpha')!.sps!.find((s) => s.name === 'A')!;
    const client = await NbdClient.connect(`nbd://127.0.0.1:${spA.port}/disk0`);
    let writing = true;
    const buf = Buffer.alloc(4096, 0xab);
    const writer = (async () => {
      let n = 0;
      while (writing) await client.write(((n++ * 4096) % (8 << 20)) >>> 0, buf);
    })();
    try {
      await until('latency points for alpha/disk0', async () => Number(await attr('[data-chart="alpha/disk0"]', 'data-points')) >= 8, 30_000);
      // the chart says the latest values in words while the writes run
      await until('the latest rate in the chart title', async () => /\d+ IOPS, p50 [\d.]+ ms, p99 [\d.]+ ms/.test((await page.locator('[data-chart="alpha/disk0"] .now').textContent()) ?? ''), 15_000);
      await shot('3-writes.png');
    } finally {
      writing = false;
      await writer;
      await client.close();
    }
    expect(problems).toEqual([]);
  });

  it('crashes SP B with its button, shows it down and the event, and restarts it', async () => {
    await page.click('[data-action="sp-crash/alpha/B"]');
    await until('SP B drawn down', async () => !['up', null].includes(await attr('[data-sp="alpha/B"]', 'data-state')), 10_000);
    await until('sp.crashed in the log', async () => (await page.locator('#events tr[data-type="sp.crashed"]').count()) > 0, 15_000);
    const st = cli(['status', '--lab', 'dash', '--array', 'alpha', '--json']);
    const spB = (st.json as { sps: { name: string; state: string }[] }).sps.find((s) => s.name === 'B')!;
    expect(spB.state).not.toBe('up');
    expect(await attr('[data-sp="alpha/B"]', 'data-state')).toBe(spB.state);
    // the type filter keeps only what it names
    await page.fill('#type-filter', 'sp.*');
    const types = await page.locator('#events tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-type')));
    expect(types.length).toBeGreaterThan(0);
    expect(types.every((t) => t!.startsWith('sp.'))).toBe(true);
    await shot('4-sp-crashed.png');
    await page.fill('#type-filter', '');
    await page.click('[data-action="sp-restart/alpha/B"]');
    await until('SP B up again', async () => (await attr('[data-sp="alpha/B"]', 'data-state')) === 'up', 60_000);
    expect(problems).toEqual([]);
  });

  it('fails and restores the power of the two-SP array with its buttons', async () => {
    await page.click('[data-action="power-fail/alpha"]');
    await until('alpha powered off', async () => (cli(['status', '--lab', 'dash', '--array', 'alpha', '--json']).json as { power?: string }).power === 'off', 30_000);
    await until('the power badge and the restore button', async () => (await page.locator('[data-action="power-restore/alpha"]').isEnabled()) && (await page.locator('[data-card="array/alpha"]').textContent())!.includes('off'), 10_000);
    expect(await page.locator('[data-array="alpha"]').textContent()).toContain('POWER OFF');
    await shot('4b-power-off.png');
    await page.click('[data-action="power-restore/alpha"]');
    await until('alpha powered on with both SPs up', async () => {
      const st = cli(['status', '--lab', 'dash', '--array', 'alpha', '--json']).json as { power?: string; sps: { state: string }[] };
      return st.power === 'on' && st.sps.every((s) => s.state === 'up');
    }, 60_000);
    expect(problems).toEqual([]);
  });

  it("crashes and restarts array bravo through the supervisor's buttons", async () => {
    await page.click('[data-action="array-crash/bravo"]');
    await until('bravo drawn crashed', async () => (await attr('[data-array="bravo"]', 'data-state')) === 'crashed', 10_000);
    await shot('5-array-crashed.png');
    await page.click('[data-action="array-restart/bravo"]');
    await until('bravo running again', async () => (await attr('[data-array="bravo"]', 'data-state')) === 'running', 60_000);
    const st = cli(['status', '--lab', 'dash', '--json']);
    expect((st.json as { labArrays: { name: string; state: string }[] }).labArrays.find((a) => a.name === 'bravo')!.state).toBe('running');
    expect(problems).toEqual([]);
    expect(foreignRequests).toEqual([]);
  });
  it('with a token: a browser without it gets 401, the ?token= link sets a cookie, drops the token from the URL, and the page works', async () => {
    const token = 'browser-token-0123456';
    const dash = new DashboardServer({ lab: () => state as unknown as DashboardLab, token });
    const { url } = await dash.listen();
    const context = await browser.newContext({ viewport: { width: 1400, height: 1100 } });
    try {
      const p = await context.newPage();
      const errors: string[] = [];
      p.on('pageerror', (e) => errors.push(e.message));
      expect((await p.goto(url))!.status()).toBe(401);
      expect((await p.goto(`${url}?token=wrong-token-0000`))!.status()).toBe(401);
      expect((await p.goto(`${url}?token=${token}`))!.status()).toBe(200);
      expect(p.url()).toBe(url); // the token left the address bar (and the history)
      await p.waitForSelector('[data-array="bravo"]', { timeout: 15_000 });
      await p.waitForSelector('#live.ok', { timeout: 10_000 });
      // a change through the proxy carries the cookie: the link is cut and restored
      await p.click('[data-action="link-cut/ab"]');
      await until('the link cut from the token page', async () => (cli(['link', 'status', 'ab', '--lab', 'dash', '--json']).json as { state: string }).state === 'cut', 15_000);
      await p.click('[data-action="link-restore/ab"]');
      await until('the link up again', async () => (cli(['link', 'status', 'ab', '--lab', 'dash', '--json']).json as { state: string }).state === 'up', 15_000);
      expect(errors).toEqual([]);
      // the cookie is this dashboard's: a new context without it is refused again
      const other = await browser.newContext();
      expect((await (await other.newPage()).goto(url))!.status()).toBe(401);
      await other.close();
    } finally {
      await context.close();
      await dash.close();
    }
  });
});
