// The lab file of a run: the scenario's lab under the run's own name, on fresh ports below the
// ephemeral range, with no array directory of its own, and still a valid lab file.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseLab } from '../../../src/cli/lab/index.js';
import { freePorts, PORT_RANGE, rewriteLab } from '../../../src/scenario/runner/lab.js';
import { REPO } from '../../support/paths.js';

const work = mkdtempSync(join(tmpdir(), 'sanbox-scenario-lab-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('rewriteLab', () => {
  it('keeps the lab but renames it, moves every port and drops array directories', async () => {
    const file = join(REPO, 'scenarios/labs/two-sites.yaml');
    const text = await rewriteLab(file, 'scn-x-1');
    const doc = parse(text);
    expect(doc.lab).toBe('scn-x-1');
    const ports = [
      ...doc.arrays.flatMap((a: any) => [...(a.nbd.ports ?? [a.nbd.port]), a.api.port, a.remoteLink.port]),
      ...doc.links.flatMap((l: any) => [l.listen.toB, l.listen.toA, l.api.port]),
    ];
    expect(doc.arrays[0].nbd.ports).toHaveLength(2); // alpha has two SPs
    expect(new Set(ports).size).toBe(ports.length);
    for (const p of ports) {
      expect(p).toBeGreaterThanOrEqual(PORT_RANGE.from);
      expect(p).toBeLessThan(PORT_RANGE.to);
    }
    expect(doc.arrays.every((a: any) => a.dir === undefined)).toBe(true);
    // the rest is as it was, and the result is a valid lab file
    const orig = parse(await import('node:fs').then((fs) => fs.readFileSync(file, 'utf8')));
    expect(doc.mirrors).toEqual(orig.mirrors);
    expect(doc.groups).toEqual(orig.groups);
    expect(doc.sites).toEqual(orig.sites);
    const out = join(work, 'lab.yaml');
    writeFileSync(out, text);
    expect(parseLab(text, out).name).toBe('scn-x-1');
  });

  it('resolves a relative secret file against the original lab file', async () => {
    const dir = mkdtempSync(join(work, 'lab-'));
    writeFileSync(join(dir, 'secret'), 'a-shared-secret-of-16-chars-or-more\n');
    writeFileSync(
      join(dir, 'lab.yaml'),
      'arrays:\n  - { name: a, remoteLink: { port: 1 }, luns: [{ name: d, size: 1M }] }\n  - { name: b, nbd: { port: 2 }, api: { port: 3 }, remoteLink: { port: 4 }, luns: [{ name: d, size: 1M }] }\nlinks:\n  - { name: a-b, between: [a, b], secretFile: secret }\n',
    );
    const doc = parse(await rewriteLab(join(dir, 'lab.yaml'), 'scn-s-1'));
    expect(doc.links[0].secretFile).toBe(join(dir, 'secret'));
  });
});

describe('freePorts', () => {
  it('gives distinct bindable ports in the range', async () => {
    const ports = await freePorts(20);
    expect(new Set(ports).size).toBe(20);
    for (const p of ports) expect(p >= PORT_RANGE.from && p < PORT_RANGE.to).toBe(true);
  });
});
