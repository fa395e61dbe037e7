// The report's timeline as a person sees it: report.html opened from a file in headless Chromium
// (Debian's, driven by playwright-core; nothing downloads a browser). Skipped, with the reason,
// where /usr/bin/chromium is missing (CI installs it).
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser } from 'playwright-core';
import { renderReportHtml } from '../../../src/scenario/report/html.js';
import { makeReport } from './fixture.js';

const CHROMIUM = '/usr/bin/chromium';
const have = existsSync(CHROMIUM);
if (!have) console.warn(`report browser test skipped: ${CHROMIUM} missing (apt-get install chromium)`);

describe.skipIf(!have)('report.html in Chromium', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sanbox-report-browser-'));
  let browser: Browser;
  beforeAll(async () => {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  });
  afterAll(async () => {
    await browser?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('renders the timeline, its lanes and tooltips, and asks the network for nothing', async () => {
    const report = makeReport();
    const file = join(dir, 'report.html');
    writeFileSync(file, renderReportHtml(report));
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const requests: string[] = [];
    const problems: string[] = [];
    page.on('request', (r) => requests.push(r.url()));
    page.on('console', (m) => m.type() === 'error' && problems.push(m.text()));
    page.on('pageerror', (e) => problems.push(e.message));
    await page.goto(`file://${file}`);
    const svg = page.locator('svg').first();
    const box = await svg.boundingBox();
    expect(box!.width).toBeGreaterThan(1000);
    expect(box!.height).toBeGreaterThan(200);
    // every fault of the trace is drawn, labelled, with its tooltip
    const text = await svg.textContent();
    for (const f of report.trace) expect(text).toContain(f.label);
    expect(await page.locator('svg title').count()).toBeGreaterThanOrEqual(report.trace.length + report.events.length);
    // the injected description is text, not a script that ran
    expect(await page.evaluate(() => (window as unknown as { pwned?: boolean }).pwned)).toBeUndefined();
    expect(await page.locator('script').count()).toBe(0);
    expect(requests.filter((u) => !u.startsWith('file://'))).toEqual([]);
    expect(problems).toEqual([]);
    await page.close();
  });
});
