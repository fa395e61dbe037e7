/**
 * A small strict parser of the Prometheus text exposition format (version 0.0.4), for the tests
 * that scrape /metrics: it rejects what a Prometheus server would reject (bad names, bad label
 * syntax or escapes, duplicate series, a TYPE after its samples, interleaved families) and checks
 * what the format promises of its types (counters not negative; histograms with an `le` on every
 * bucket, buckets cumulative and ending in +Inf equal to _count, a _sum). No regular expression
 * is run over the whole text: it is read line by line, character by character.
 */

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  type: MetricType;
  help: string | undefined;
  samples: Sample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set<MetricType>(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

export class PromParseError extends Error {}

function fail(line: number, why: string): never {
  throw new PromParseError(`line ${line}: ${why}`);
}

function parseValue(s: string, line: number): number {
  if (s === '+Inf' || s === 'Inf') return Infinity;
  if (s === '-Inf') return -Infinity;
  if (s === 'NaN') return NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(s)) fail(line, `bad value ${JSON.stringify(s)}`);
  return Number(s);
}

/** The family a sample belongs to: histograms and summaries own their _bucket, _sum and _count. */
function familyOf(sample: string, families: Map<string, Family>): string {
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (!sample.endsWith(suffix)) continue;
    const base = sample.slice(0, -suffix.length);
    const f = families.get(base);
    if (f && (f.type === 'histogram' || (f.type === 'summary' && suffix !== '_bucket'))) return base;
  }
  return sample;
}

function parseSample(text: string, line: number): Sample {
  let i = 0;
  while (i < text.length && /[a-zA-Z0-9_:]/.test(text[i]!)) i++;
  const name = text.slice(0, i);
  if (!METRIC_NAME.test(name)) fail(line, `bad metric name ${JSON.stringify(name)}`);
  const labels: Record<string, string> = {};
  if (text[i] === '{') {
    i++;
    for (;;) {
      if (text[i] === '}') {
        i++;
        break;
      }
      let j = i;
      while (j < text.length && /[a-zA-Z0-9_]/.test(text[j]!)) j++;
      const lname = text.slice(i, j);
      if (!LABEL_NAME.test(lname)) fail(line, `bad label name ${JSON.stringify(lname)}`);
      if (text[j] !== '=' || text[j + 1] !== '"') fail(line, `label ${lname}: expected ="`);
      i = j + 2;
      let v = '';
      for (;;) {
        const c = text[i];
        if (c === undefined) fail(line, `label ${lname}: unterminated value`);
        if (c === '"') break;
        if (c === '\\') {
          const e = text[i + 1];
          if (e === '\\') v += '\\';
          else if (e === '"') v += '"';
          else if (e === 'n') v += '\n';
          else fail(line, `label ${lname}: bad escape \\${e ?? ''}`);
          i += 2;
          continue;
        }
        v += c;
        i++;
      }
      i++;
      if (lname in labels) fail(line, `label ${lname} given twice`);
      labels[lname] = v;
      if (text[i] === ',') i++;
      else if (text[i] !== '}') fail(line, `expected , or } after label ${lname}`);
    }
  }
  if (text[i] !== ' ') fail(line, 'expected a space before the value');
  const parts = text.slice(i + 1).split(' ');
  if (parts.length < 1 || parts.length > 2 || parts[0] === '') fail(line, `expected "value [timestamp]", got ${JSON.stringify(text.slice(i + 1))}`);
  const value = parseValue(parts[0]!, line);
  if (parts.length === 2 && !/^-?\d+$/.test(parts[1]!)) fail(line, `bad timestamp ${JSON.stringify(parts[1])}`);
  return { name, labels, value };
}

const seriesKey = (s: Sample) => `${s.name}{${Object.keys(s.labels).sort().map((k) => `${k}=${JSON.stringify(s.labels[k])}`).join(',')}}`;

/** Parses a whole exposition; throws PromParseError with the line of the first problem. */
export function parsePrometheusText(text: string): Map<string, Family> {
  if (text.length > 0 && !text.endsWith('\n')) throw new PromParseError('the exposition must end with a newline');
  const families = new Map<string, Family>();
  const seen = new Set<string>();
  const closed = new Set<string>();
  let current: string | undefined;
  const enter = (name: string, line: number) => {
    if (current === name) return;
    if (current !== undefined) closed.add(current);
    if (closed.has(name)) fail(line, `family ${name} is interleaved with another one`);
    current = name;
  };
  const lines = text.split('\n');
  lines.pop();
  lines.forEach((raw, k) => {
    const line = k + 1;
    if (raw.trim() === '') return;
    if (raw.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(raw);
      if (!m) return; // a plain comment
      const [, kind, name, rest] = m as unknown as [string, 'HELP' | 'TYPE', string, string];
      if (!METRIC_NAME.test(name)) fail(line, `bad metric name ${JSON.stringify(name)} in ${kind}`);
      enter(name, line);
      let f = families.get(name);
      if (kind === 'TYPE') {
        if (f && f.samples.length) fail(line, `TYPE of ${name} after its samples`);
        if (f && f.type !== 'untyped') fail(line, `second TYPE for ${name}`);
        if (!TYPES.has(rest as MetricType)) fail(line, `unknown type ${JSON.stringify(rest)}`);
        if (f) f.type = rest as MetricType;
        else families.set(name, (f = { name, type: rest as MetricType, help: undefined, samples: [] }));
      } else {
        if (f?.help !== undefined) fail(line, `second HELP for ${name}`);
        const help = rest.replace(/\\(.)/g, (_all, c: string) => (c === 'n' ? '\n' : c === '\\' ? '\\' : fail(line, `bad escape \\${c} in HELP`)));
        if (f) f.help = help;
        else families.set(name, { name, type: 'untyped', help, samples: [] });
      }
      return;
    }
    const sample = parseSample(raw, line);
    const fname = familyOf(sample.name, families);
    enter(fname, line);
    let f = families.get(fname);
    if (!f) families.set(fname, (f = { name: fname, type: 'untyped', help: undefined, samples: [] }));
    const key = seriesKey(sample);
    if (seen.has(key)) fail(line, `duplicate series ${key}`);
    seen.add(key);
    if (f.type === 'counter' && !(sample.value >= 0)) fail(line, `counter ${sample.name} is ${sample.value}`);
    if (f.type === 'histogram' && sample.name === `${fname}_bucket` && !('le' in sample.labels)) fail(line, `bucket of ${fname} without le`);
    f.samples.push(sample);
  });
  for (const f of families.values()) if (f.type === 'histogram') checkHistogram(f);
  return families;
}

function checkHistogram(f: Family): void {
  const bySeries = new Map<string, { buckets: { le: number; v: number }[]; sum?: number; count?: number }>();
  for (const s of f.samples) {
    const { le, ...rest } = s.labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    let h = bySeries.get(key);
    if (!h) bySeries.set(key, (h = { buckets: [] }));
    if (s.name === `${f.name}_bucket`) h.buckets.push({ le: parseValue(le!, 0), v: s.value });
    else if (s.name === `${f.name}_sum`) h.sum = s.value;
    else if (s.name === `${f.name}_count`) h.count = s.value;
    else throw new PromParseError(`histogram ${f.name} has a sample ${s.name}`);
  }
  for (const [key, h] of bySeries) {
    if (h.sum === undefined || h.count === undefined) throw new PromParseError(`histogram ${f.name}${key} lacks _sum or _count`);
    const last = h.buckets[h.buckets.length - 1];
    if (!last || last.le !== Infinity) throw new PromParseError(`histogram ${f.name}${key} does not end in an le="+Inf" bucket`);
    if (last.v !== h.count) throw new PromParseError(`histogram ${f.name}${key}: +Inf bucket ${last.v} != _count ${h.count}`);
    for (let i = 1; i < h.buckets.length; i++) {
      if (!(h.buckets[i]!.le > h.buckets[i - 1]!.le)) throw new PromParseError(`histogram ${f.name}${key}: le not increasing`);
      if (h.buckets[i]!.v < h.buckets[i - 1]!.v) throw new PromParseError(`histogram ${f.name}${key}: buckets not cumulative`);
    }
  }
}

/** The one sample of `name` whose labels are exactly `labels`; throws when there is none. */
export function sampleValue(fams: Map<string, Family>, name: string, labels: Record<string, string>): number {
  const want = JSON.stringify(Object.entries(labels).sort());
  for (const f of fams.values()) {
    for (const s of f.samples) {
      if (s.name === name && JSON.stringify(Object.entries(s.labels).sort()) === want) return s.value;
    }
  }
  throw new Error(`no sample ${name}${JSON.stringify(labels)}`);
}

/** The samples of `name` whose labels include `labels`. */
export function samplesOf(fams: Map<string, Family>, name: string, labels: Record<string, string> = {}): Sample[] {
  const out: Sample[] = [];
  for (const f of fams.values()) {
    for (const s of f.samples) if (s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)) out.push(s);
  }
  return out;
}

/** Fetches `url` (a /metrics) and parses it; asserts the status and the content type first. */
export async function scrape(url: string, headers: Record<string, string> = {}): Promise<Map<string, Family>> {
  const res = await fetch(url, { headers });
  const body = await res.text();
  if (res.status !== 200) throw new Error(`GET ${url}: ${res.status} ${body}`);
  const type = res.headers.get('content-type') ?? '';
  if (!type.startsWith('text/plain; version=0.0.4')) throw new Error(`GET ${url}: content type ${type}`);
  return parsePrometheusText(body);
}
