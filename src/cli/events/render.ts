/** How `sanbox events` prints an event, and its --type filter. */
import { usage } from '../common.js';
import type { SourcedEvent } from './sources.js';

/** Fields every line shows in its own columns (or that repeat the source). */
const SHOWN = new Set(['seq', 'time', 'type', 'source', 'kind', 'array', 'link', 'lab']);

function value(v: unknown): string {
  if (typeof v === 'string') return /[\s"=]/.test(v) ? JSON.stringify(v) : v;
  return JSON.stringify(v);
}

/** `TIME  KIND SOURCE  TYPE  key=value ...` */
export function eventLine(e: SourcedEvent): string {
  const details = Object.entries(e)
    .filter(([k, v]) => !SHOWN.has(k) && v !== undefined)
    .map(([k, v]) => `${k}=${value(v)}`)
    .join(' ');
  return `${e.time}  ${`${e.kind} ${e.source}`.padEnd(16)}  ${e.type.padEnd(24)}${details ? `  ${details}` : ''}`.trimEnd();
}

/** --type: comma-separated patterns, `*` matching any run of characters; absent: every type. */
export function typeFilter(text: string | undefined): (type: string) => boolean {
  if (text === undefined) return () => true;
  const parts = text.split(',').map((p) => p.trim());
  if (parts.some((p) => !/^[A-Za-z0-9.*_-]+$/.test(p))) throw usage(`--type must be comma-separated event types or patterns like 'mirror.*', not ${JSON.stringify(text)}`);
  const res = parts.map((p) => new RegExp(`^${p.replace(/\./g, '\\.').replace(/\*/g, '.*')}$`));
  return (type) => res.some((r) => r.test(type));
}
