// The scrape-time builder over prom-client, read back by the strict parser of the tests
// (test/support/prom-text.ts); and that parser refusing what a Prometheus server would refuse,
// so a test that passes through it has parsed real exposition text.
import { describe, expect, it } from 'vitest';
import { MetricsBuilder } from '../../src/metrics/index.js';
import { parsePrometheusText, PromParseError, sampleValue, samplesOf } from '../support/prom-text.js';

describe('MetricsBuilder', () => {
  it('writes counters, gauges, state sets and preset histograms that parse back', async () => {
    const m = new MetricsBuilder();
    m.counter('x_ops_total', 'Ops.', ['lun', 'op'])({ lun: 'd"0\\', op: 'write' }, 42);
    m.gauge('x_bytes', 'Bytes\nwith a newline.', ['lun'])({ lun: 'd0' }, 1.5);
    m.stateSet('x_state', 'State.', ['sp'], ['up', 'down'])({ sp: 'A' }, 'down');
    m.histogram('x_latency_seconds', 'Latency.', ['op'], [0.001, 0.01])({ op: 'read' }, [2, 0, 3], 7.25);
    const { contentType, text } = await m.render();
    expect(contentType).toBe('text/plain; version=0.0.4; charset=utf-8');
    const f = parsePrometheusText(text);
    expect(f.get('x_ops_total')!.type).toBe('counter');
    expect(sampleValue(f, 'x_ops_total', { lun: 'd"0\\', op: 'write' })).toBe(42);
    expect(f.get('x_bytes')!.help).toBe('Bytes\nwith a newline.');
    expect(sampleValue(f, 'x_state', { sp: 'A', state: 'down' })).toBe(1);
    expect(sampleValue(f, 'x_state', { sp: 'A', state: 'up' })).toBe(0);
    expect(samplesOf(f, 'x_latency_seconds_bucket').map((s) => [s.labels.le, s.value])).toEqual([
      ['0.001', 2],
      ['0.01', 2],
      ['+Inf', 5],
    ]);
    expect(sampleValue(f, 'x_latency_seconds_count', { op: 'read' })).toBe(5);
    expect(sampleValue(f, 'x_latency_seconds_sum', { op: 'read' })).toBe(7.25);
  });

  it('refuses wrong labels, an unknown state, a counter without _total and a bad bucket count', () => {
    const m = new MetricsBuilder();
    const g = m.gauge('y', 'Y.', ['a']);
    expect(() => g({ b: 'x' }, 1)).toThrow(/labels/);
    expect(() => g({ a: 'x' }, NaN)).toThrow(/finite/);
    expect(() => m.stateSet('z', 'Z.', [], ['on'])({}, 'off')).toThrow(/not one of/);
    expect(() => m.counter('c', 'C.', [])).toThrow(/_total/);
    expect(() => m.histogram('h_seconds', 'H.', [], [1])({}, [1], 0)).toThrow(/bucket counts/);
  });
});

describe('the test parser of the text format', () => {
  const bad: [string, string][] = [
    ['no trailing newline', '# TYPE a gauge\na 1'],
    ['bad metric name', '1a 1\n'],
    ['bad label escape', 'a{x="\\t"} 1\n'],
    ['unterminated label', 'a{x="1} 1\n'],
    ['duplicate series', 'a{x="1"} 1\na{x="1"} 2\n'],
    ['TYPE after samples', 'a 1\n# TYPE a gauge\n'],
    ['interleaved families', 'a 1\nb 1\na{x="2"} 1\n'],
    ['negative counter', '# TYPE a_total counter\na_total -1\n'],
    ['bad value', 'a one\n'],
    ['histogram without +Inf', '# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n'],
    ['histogram not cumulative', '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n'],
    ['histogram count mismatch', '# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 1\n'],
  ];
  for (const [why, text] of bad) {
    it(`refuses: ${why}`, () => {
      expect(() => parsePrometheusText(text)).toThrow(PromParseError);
    });
  }
});
