/**
 * A reader of the Prometheus text format as sanbox's servers write it (prom-client): one sample
 * per line, `name{label="value",...} value`. Comments (# HELP, # TYPE) are skipped. A small
 * scanner, not a regular expression, because label values may hold escaped quotes and commas.
 */

export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Every sample of a scrape; a malformed line throws (a server that writes one is broken). */
export function parsePromText(text: string): PromSample[] {
  const out: PromSample[] = [];
  const lines = text.split('\n');
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    try {
      out.push(parseLine(line));
    } catch (e) {
      throw new Error(`metrics line ${n + 1}: ${(e as Error).message}: ${line.slice(0, 120)}`);
    }
  }
  return out;
}

function parseLine(line: string): PromSample {
  let i = 0;
  while (i < line.length && /[A-Za-z0-9_:]/.test(line[i]!)) i++;
  const name = line.slice(0, i);
  if (!name) throw new Error('no metric name');
  const labels: Record<string, string> = {};
  if (line[i] === '{') {
    i++;
    for (;;) {
      while (line[i] === ' ' || line[i] === ',') i++;
      if (line[i] === '}') {
        i++;
        break;
      }
      const start = i;
      while (i < line.length && /[A-Za-z0-9_]/.test(line[i]!)) i++;
      const key = line.slice(start, i);
      if (!key || line[i] !== '=' || line[i + 1] !== '"') throw new Error('bad label');
      i += 2;
      let v = '';
      while (i < line.length && line[i] !== '"') {
        if (line[i] === '\\') {
          const c = line[i + 1];
          v += c === 'n' ? '\n' : (c ?? '');
          i += 2;
        } else v += line[i++];
      }
      if (line[i] !== '"') throw new Error('unterminated label value');
      i++;
      labels[key] = v;
    }
  }
  const rest = line.slice(i).trim().split(/\s+/);
  const raw = rest[0];
  if (raw === undefined || raw === '') throw new Error('no value');
  const value = raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : raw === 'NaN' ? NaN : Number(raw);
  if (Number.isNaN(value) && raw !== 'NaN') throw new Error(`bad value ${JSON.stringify(raw)}`);
  return { name, labels, value };
}
