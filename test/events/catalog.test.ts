// The event catalog (src/events) against what the source emits and what docs/events.md says:
// an event emitted but not catalogued, catalogued but never emitted, or documented differently
// fails here, so neither the catalog nor the docs can drift from the code.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ARRAY_EVENT_TYPES, AUTOMATION_EVENT_TYPES, EVENT_TYPES, HEARTBEAT_EVENT_TYPES, LINK_EVENT_TYPES, MONITOR_EVENT_TYPES, SUPERVISOR_EVENT_TYPES, eventFamily, isArrayEventType, isAutomationEventType, isHeartbeatEventType, isLinkEventType, isMonitorEventType, isSupervisorEventType } from '../../src/events/index.js';
import { scanEmittedEvents } from './scan.js';

const ROOT = join(import.meta.dirname, '..', '..');

let scanned: ReturnType<typeof scanEmittedEvents> | undefined;
/** The source is parsed once per run. */
function scan(): ReturnType<typeof scanEmittedEvents> {
  scanned ??= scanEmittedEvents(ROOT);
  return scanned;
}

function sorted(xs: Iterable<string>): string[] {
  return [...new Set(xs)].sort();
}

/**
 * The types docs/events.md lists, per stream: table rows whose first cell is a backquoted
 * `family.name`, under a `## ...` heading naming the stream ("Array events", "Link emulator events").
 */
function documentedEvents(markdown: string): { array: string[]; link: string[]; supervisor: string[]; monitor: string[]; heartbeat: string[]; automation: string[] } {
  const out = { array: [] as string[], link: [] as string[], supervisor: [] as string[], monitor: [] as string[], heartbeat: [] as string[], automation: [] as string[] };
  let stream: 'array' | 'link' | 'supervisor' | 'monitor' | 'heartbeat' | 'automation' | null = null;
  for (const line of markdown.split('\n')) {
    const h = /^## (.*)$/.exec(line);
    if (h) stream = /^array events/i.test(h[1]!) ? 'array' : /^link emulator events/i.test(h[1]!) ? 'link' : /^supervisor events/i.test(h[1]!) ? 'supervisor' : /^monitor events/i.test(h[1]!) ? 'monitor' : /^heartbeat events/i.test(h[1]!) ? 'heartbeat' : /^automation events/i.test(h[1]!) ? 'automation' : null;
    const row = /^\|\s*`([a-z]+\.[a-z][a-z-]*)`\s*\|/.exec(line);
    if (row) {
      if (!stream) throw new Error(`docs/events.md: ${row[1]} is listed outside the "Array events", "Link emulator events", "Supervisor events" and "Monitor events" sections`);
      out[stream].push(row[1]!);
    }
  }
  return out;
}

describe('event catalog', () => {
  it('has no duplicates, and the three streams do not overlap', () => {
    expect(EVENT_TYPES.length).toBe(new Set(EVENT_TYPES).size);
    for (const t of ARRAY_EVENT_TYPES) expect(isLinkEventType(t) || isSupervisorEventType(t), t).toBe(false);
    for (const t of LINK_EVENT_TYPES) expect(isArrayEventType(t) || isSupervisorEventType(t), t).toBe(false);
    for (const t of SUPERVISOR_EVENT_TYPES) expect(isArrayEventType(t) || isLinkEventType(t) || isMonitorEventType(t), t).toBe(false);
    for (const t of MONITOR_EVENT_TYPES) expect(isArrayEventType(t) || isLinkEventType(t) || isSupervisorEventType(t) || isHeartbeatEventType(t), t).toBe(false);
    for (const t of HEARTBEAT_EVENT_TYPES) expect(isArrayEventType(t) || isLinkEventType(t) || isSupervisorEventType(t) || isMonitorEventType(t) || isAutomationEventType(t), t).toBe(false);
    for (const t of AUTOMATION_EVENT_TYPES) expect(isArrayEventType(t) || isLinkEventType(t) || isSupervisorEventType(t) || isMonitorEventType(t) || isHeartbeatEventType(t), t).toBe(false);
    expect(eventFamily('mirror.resync-done')).toBe('mirror');
  });

  it('lists exactly the event types the source emits', () => {
    const { emissions, unresolved } = scan();
    expect(unresolved, 'event literals whose family the scanner cannot tell (give scan.ts a rule)').toEqual([]);
    const emitted = sorted(emissions.map((e) => e.type));
    const where = (t: string) => emissions.filter((e) => e.type === t).map((e) => `${e.file}:${e.line}`);
    const notCatalogued = emitted.filter((t) => !(EVENT_TYPES as readonly string[]).includes(t));
    expect(notCatalogued.map((t) => `${t} (${where(t).join(', ')})`), 'emitted but not in src/events/catalog.ts').toEqual([]);
    const neverEmitted = EVENT_TYPES.filter((t) => !emitted.includes(t));
    expect(neverEmitted, 'in src/events/catalog.ts but never emitted').toEqual([]);
  });

  it('link-emulator events come from src/link, monitor events from src/monitor, array events from elsewhere', () => {
    for (const e of scan().emissions) {
      const inLink = e.file.startsWith(join('src', 'link'));
      expect(isLinkEventType(e.type), `${e.type} at ${e.file}:${e.line}`).toBe(inLink);
      expect(isMonitorEventType(e.type), `${e.type} at ${e.file}:${e.line}`).toBe(e.file.startsWith(join('src', 'monitor')));
      expect(isHeartbeatEventType(e.type), `${e.type} at ${e.file}:${e.line}`).toBe(e.file.startsWith(join('src', 'heartbeat')));
      expect(isAutomationEventType(e.type), `${e.type} at ${e.file}:${e.line}`).toBe(e.file.startsWith(join('src', 'automation')));
    }
  });

  it('docs/events.md documents exactly the catalog', () => {
    const docs = documentedEvents(readFileSync(join(ROOT, 'docs', 'events.md'), 'utf8'));
    expect(docs.array.length, 'an array event listed twice in docs/events.md').toBe(new Set(docs.array).size);
    expect(docs.link.length, 'a link event listed twice in docs/events.md').toBe(new Set(docs.link).size);
    expect(sorted(docs.array), 'docs/events.md "Array events" vs ARRAY_EVENT_TYPES').toEqual(sorted(ARRAY_EVENT_TYPES));
    expect(sorted(docs.link), 'docs/events.md "Link emulator events" vs LINK_EVENT_TYPES').toEqual(sorted(LINK_EVENT_TYPES));
    expect(docs.supervisor.length, 'a supervisor event listed twice in docs/events.md').toBe(new Set(docs.supervisor).size);
    expect(sorted(docs.supervisor), 'docs/events.md "Supervisor events" vs SUPERVISOR_EVENT_TYPES').toEqual(sorted(SUPERVISOR_EVENT_TYPES));
    expect(docs.monitor.length, 'a monitor event listed twice in docs/events.md').toBe(new Set(docs.monitor).size);
    expect(sorted(docs.monitor), 'docs/events.md "Monitor events" vs MONITOR_EVENT_TYPES').toEqual(sorted(MONITOR_EVENT_TYPES));
    expect(docs.heartbeat.length, 'a heartbeat event listed twice in docs/events.md').toBe(new Set(docs.heartbeat).size);
    expect(sorted(docs.heartbeat), 'docs/events.md "Heartbeat events" vs HEARTBEAT_EVENT_TYPES').toEqual(sorted(HEARTBEAT_EVENT_TYPES));
    expect(docs.automation.length, 'an automation event listed twice in docs/events.md').toBe(new Set(docs.automation).size);
    expect(sorted(docs.automation), 'docs/events.md "Automation events" vs AUTOMATION_EVENT_TYPES').toEqual(sorted(AUTOMATION_EVENT_TYPES));
  });
});
