import { describe, it, expect } from 'vitest';
import { escapeHtml, renderReportHtml } from '../../../src/scenario/report/html.js';
import type { ScenarioReport } from '../../../src/scenario/report/types.js';
import { emptyReport, makeReport } from './fixture.js';

const VOID = new Set(['meta', 'br', 'hr', 'img', 'input', 'link', 'col', 'area', 'base', 'source', 'wbr']);

/** Every element closed in order (no HTML parser at hand: a tag stack over the markup). */
function assertBalanced(html: string): void {
  const markup = html.replace(/<style>[\s\S]*?<\/style>/, '').replace(/<!DOCTYPE html>/, '');
  const stack: string[] = [];
  for (const m of markup.matchAll(/<(\/?)([a-zA-Z][\w-]*)([^<>]*?)(\/?)>/g)) {
    const [, closing, name, , selfClosing] = m;
    const tag = name!.toLowerCase();
    if (selfClosing || VOID.has(tag)) continue;
    if (!closing) stack.push(tag);
    else expect(stack.pop(), `</${tag}> at ${m.index}`).toBe(tag);
  }
  expect(stack).toEqual([]);
  // no stray angle bracket outside a tag: user text is escaped
  expect(markup.replace(/<\/?[a-zA-Z][\w-]*[^<>]*>/g, '')).not.toMatch(/[<>]/);
}

const count = (s: string, re: RegExp) => s.match(re)?.length ?? 0;

describe('renderReportHtml', () => {
  const html = renderReportHtml(makeReport());

  it('renders a balanced document with one timeline', () => {
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    for (const tag of ['svg', 'table', 'g', 'html', 'body', 'section']) {
      expect(count(html, new RegExp(`<${tag}[\\s>]`, 'g')), tag).toBe(count(html, new RegExp(`</${tag}>`, 'g')));
    }
    expect(count(html, /<svg[\s>]/g)).toBe(1);
    expect(count(html, /<table[\s>]/g)).toBe(4);
    assertBalanced(html);
  });

  it('needs nothing outside the page', () => {
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/\s(src|href)=/i);
  });

  it('shows every fault label and check label, escaped', () => {
    for (const t of makeReport().trace) expect(html).toContain(escapeHtml(t.label));
    for (const c of makeReport().checks) expect(html).toContain(escapeHtml(c.label));
    expect(html).toContain('&lt;odd &amp; &quot;quoted&quot;&gt;');
  });

  it('escapes user text everywhere', () => {
    expect(html).toContain('&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;');
    expect(html).not.toContain('<script>');
    expect(html).not.toContain('</title><script>');
    expect(html).toContain('SP &lt;spa&gt; is restarting');
    expect(html).toContain('write failed: EIO &lt;at block 7&gt;');
    expect(html).toContain('3 acked writes missing &amp; &lt;lost&gt;');
  });

  it('shows FAIL with the failure, the commands and the measures', () => {
    expect(html).toContain('<span class="badge fail">FAIL</span>');
    expect(html).not.toContain('badge pass');
    expect(html).toContain(escapeHtml(makeReport().rerun));
    expect(html).toContain(escapeHtml(makeReport().replay));
    expect(html).toContain('1.25 s');
    expect(html).toContain('16.00 s');
    expect(html).toContain('<span class="st fail">FAIL</span>');
    expect(html).toContain('<span class="st skip">skipped</span>');
    expect(html).toContain('<span class="st ok">ok</span>');
  });

  it('draws lanes for faults, steps, each event source, the backlog and the workload', () => {
    for (const label of ['faults', 'steps', 'alpha', 'alpha-bravo', 'bravo', 'lab', 'backlog g1', 'workload w1']) {
      expect(html).toContain(`class="lane-label">${label}</text>`);
    }
    expect(html).not.toContain('workload idle'); // no samples: no chart, but a table row
    expect(html).toMatch(/<td>idle<\/td>/);
    expect(count(html, /class="fault[" ]/g)).toBe(3);
    expect(count(html, /class="fault failed"/g)).toBe(1); // its undo failed
    expect(count(html, /class="step failed"/g)).toBe(1);
    expect(count(html, /<g class="ev">/g)).toBe(10);
    expect(html).toContain('stroke="#8e44ad"'); // sp.crashed: its family's color
  });

  it('puts a label that would run off the chart left of its mark', () => {
    const r = makeReport();
    r.steps.push({ source: 'step', index: 2, name: 'last', kind: 'sleep', label: 'a rather long label at the very end of the run', command: 'sleep 0', plannedMs: null, startMs: 15_990, endMs: 15_995, ok: true });
    const out = renderReportHtml(r);
    expect(out).toMatch(/class="bar-label" text-anchor="end">last: a rather long label/);
    expect(out).toMatch(/class="bar-label" text-anchor="start">#0 link alpha-bravo/);
  });

  it('marks the windows without acks as one gap', () => {
    expect(count(html, /class="gap-veil"/g)).toBe(1);
    expect(html).toContain('no writes acknowledged 8.00 s → 10.00 s (2 windows)');
    expect(html).toContain('write latency ms (log)'); // 0.42 .. 85 ms
  });

  it('says PASS for a passing run', () => {
    const ok = renderReportHtml({ ...makeReport(), ok: true, failure: null });
    expect(ok).toContain('<span class="badge pass">PASS</span>');
    expect(ok).not.toContain('badge fail');
  });

  it('renders an empty report', () => {
    const out = renderReportHtml(emptyReport());
    assertBalanced(out);
    expect(out).toContain('no faults injected');
    expect(out).toContain('no events recorded');
    expect(out).toContain('no workloads');
    expect(out).toContain('no checks');
    expect(out).toContain('not measured');
    expect(out).toContain('PASS');
  });

  it('survives missing arrays and odd values', () => {
    const odd = { ...emptyReport(), trace: undefined, events: null, durationMs: Number.NaN, spec: undefined } as unknown as ScenarioReport;
    expect(() => assertBalanced(renderReportHtml(odd))).not.toThrow();
    const flat = { ...makeReport(), backlog: [{ group: 'g2', array: 'bravo', samples: [{ tMs: 1000, entries: 0, bytes: 0 }] }] };
    assertBalanced(renderReportHtml(flat));
  });
});

describe('escapeHtml', () => {
  it('escapes the five characters and stringifies', () => {
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
    expect(escapeHtml(null)).toBe('');
    expect(escapeHtml(undefined)).toBe('');
    expect(escapeHtml(12)).toBe('12');
  });
});
