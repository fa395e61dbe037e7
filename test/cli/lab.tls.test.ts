// Lab files with arrays[].nbd TLS keys: the credentials (relative to the lab file) reach the
// array's config, and every bad combination or file is a problem (exit 2, nothing started).
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LabError, parseLab } from '../../src/cli/lab.js';
import { arrayConfig } from '../../src/cli/lab/config.js';

const dir = mkdtempSync(join(tmpdir(), 'sanbox-lab-tls-'));
writeFileSync(join(dir, 'keys.psk'), `alice:${randomBytes(32).toString('hex')}\n`);
writeFileSync(join(dir, 'bad.psk'), `alice:${randomBytes(32).toString('hex')}\nbob\n`);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const lab = (nbd: string) => `
lab: t
arrays:
  - { name: bravo, nbd: { port: 0, ${nbd} }, api: { port: 0 }, luns: [] }
`;
const file = join(dir, 't.yaml');

/** The problems parseLab lists (exit 2), for a lab file in `dir`. */
function labProblems(yaml: string): string[] {
  try {
    parseLab(yaml, file);
  } catch (e) {
    expect(e).toBeInstanceOf(LabError);
    expect((e as LabError).exitCode).toBe(2);
    return (e as LabError).problems;
  }
  throw new Error('expected the lab to be rejected');
}

describe('lab files: NBD over TLS', () => {
  it('a PSK file relative to the lab file, with and without a mode, reaches the array config', () => {
    const l = parseLab(lab('tls: on, tlsPsk: keys.psk'), file);
    expect(l.arrays[0]!.nbd.tls).toEqual({ mode: 'on', psk: join(dir, 'keys.psk') });
    expect(arrayConfig(l.arrays[0]!).nbd.tls).toEqual({ mode: 'on', psk: join(dir, 'keys.psk') });
    expect(parseLab(lab('tlsPsk: keys.psk'), file).arrays[0]!.nbd.tls).toEqual({ mode: 'require', psk: join(dir, 'keys.psk') });
    expect(parseLab(lab('tls: true, tlsPsk: keys.psk'), file).arrays[0]!.nbd.tls!.mode).toBe('on');
    expect(parseLab(lab('tls: off'), file).arrays[0]!.nbd.tls).toBeUndefined();
  });

  it('refuses require without credentials, both kinds, off with credentials, unreadable files and bad PSK lines', () => {
    const p = (nbd: string) => labProblems(lab(nbd));
    expect(p('tls: require')).toEqual([expect.stringContaining('array bravo.nbd.tls require needs credentials')]);
    expect(p('tls: maybe, tlsPsk: keys.psk')).toEqual([expect.stringContaining('must be off, on or require')]);
    expect(p('tls: 1')).toEqual([expect.stringContaining('must be off, on or require')]);
    expect(p('tlsPsk: keys.psk, tlsCertificates: .')).toEqual([expect.stringContaining('both given')]);
    expect(p('tls: off, tlsPsk: keys.psk')).toEqual([expect.stringContaining('off with')]);
    expect(p('tlsPsk: missing.psk')).toEqual([expect.stringMatching(/cannot read the PSK file .*missing\.psk: ENOENT/)]);
    expect(p('tlsPsk: bad.psk')).toEqual([expect.stringMatching(/bad\.psk line 2: expected USERNAME:HEXKEY/)]);
    expect(p('tlsCertificates: nowhere')).toEqual([expect.stringMatching(/cannot read the directory .*nowhere/)]);
    expect(p('tlsCertificates: .')).toEqual([expect.stringMatching(/server-cert\.pem.*ENOENT/)]);
    expect(p('tlsPsk: 3')).toEqual([expect.stringContaining('tlsPsk must be a path')]);
  });
});
