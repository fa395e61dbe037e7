// nbdinfo: size, transmission flags, export list, allocation map, --can/--is.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KiB, MiB, SERVER_KIND, mustRun, rmrf, run, startServer, type NbdServer } from './harness.js';

const SIZE = 64 * MiB;
const ODD = 10 * MiB + 1536; // a multiple of 512 that is not a multiple of 4k
let srv: NbdServer;
let ro: NbdServer | undefined;

interface ExportInfo {
  'export-name': string;
  'export-size': number;
  contexts?: string[];
  is_read_only: boolean;
  can_flush: boolean;
  can_fua: boolean;
  can_trim: boolean;
  can_zero: boolean;
  can_multi_conn: boolean;
  can_df?: boolean;
  can_cache?: boolean;
  block_size_minimum?: number;
  block_size_preferred?: number;
  block_size_maximum?: number;
}
interface InfoJson { protocol: string; structured?: boolean; exports: ExportInfo[] }

async function infoJson(s: NbdServer, name: string): Promise<InfoJson> {
  const r = await mustRun('nbdinfo', ['--json', '--no-content', s.uri(name)], { server: s });
  return JSON.parse(r.stdout) as InfoJson;
}

function isPow2(n: number) {
  return n > 0 && (n & (n - 1)) === 0;
}

describe('nbdinfo', () => {
  beforeAll(async () => {
    srv = await startServer({ luns: [{ name: 'disk', size: SIZE }, { name: 'odd', size: ODD }] });
  });
  afterAll(async () => {
    await ro?.stop();
    if (srv) {
      await srv.stop();
      rmrf(srv.dir);
    }
  });

  it('reports the exact size and truthful flags of a writable export', async () => {
    const j = await infoJson(srv, 'disk');
    expect(j.protocol).toBe('newstyle-fixed');
    expect(j.structured).toBe(true);
    expect(j.exports).toHaveLength(1);
    const e = j.exports[0]!;
    expect(e['export-name']).toBe('disk');
    expect(e['export-size']).toBe(SIZE);
    expect(e.contexts ?? []).toContain('base:allocation');
    expect(e).toMatchObject({ is_read_only: false, can_flush: true, can_fua: true, can_trim: true, can_zero: true, can_df: true });
    // a single process serving one image file: a flush on any connection covers every connection
    expect(e.can_multi_conn).toBe(true);
    if (SERVER_KIND === 'sanbox' || e.block_size_minimum !== undefined) {
      const { block_size_minimum: min, block_size_preferred: pref, block_size_maximum: max } = e;
      expect(min, 'BLOCK_SIZE info missing').toBeDefined();
      expect(isPow2(min!) && min! <= 64 * KiB, `minimum block size ${min}`).toBe(true);
      expect(isPow2(pref!) && pref! >= min!, `preferred block size ${pref}`).toBe(true);
      expect(max! >= pref!, `maximum block size ${max}`).toBe(true);
      expect(SIZE % min!).toBe(0);
    }
    const size = await mustRun('nbdinfo', ['--size', srv.uri('disk')], { server: srv });
    expect(size.stdout.trim()).toBe(String(SIZE));
  });

  it('a size that is a multiple of 512 but not of 4096 is reported exactly', async () => {
    const j = await infoJson(srv, 'odd');
    expect(j.exports[0]!['export-size']).toBe(ODD);
  });

  it('--can and --is answer by exit status', async () => {
    for (const what of ['connect', 'read', 'write', 'flush', 'fua', 'trim', 'zero', 'multi-conn', 'df']) {
      const r = await run('nbdinfo', ['--can', what, srv.uri('disk')]);
      expect(r.code, `--can ${what}: ${r.stderr}`).toBe(0);
    }
    const roq = await run('nbdinfo', ['--is', 'read-only', srv.uri('disk')]);
    expect(roq.code, roq.stderr).toBe(2);
  });

  it('--list shows every export with its size', async () => {
    const r = await mustRun('nbdinfo', ['--list', '--json', `nbd://${srv.host}:${srv.port}`], { server: srv });
    const j = JSON.parse(r.stdout) as InfoJson;
    const names = j.exports.map((e) => e['export-name']).sort();
    expect(names).toEqual(['disk', 'odd']);
    const sizes = Object.fromEntries(j.exports.map((e) => [e['export-name'], e['export-size']]));
    expect(sizes).toEqual({ disk: SIZE, odd: ODD });
    const plain = await mustRun('nbdinfo', ['--list', `nbd://${srv.host}:${srv.port}`], { server: srv });
    expect(plain.stdout).toMatch(/export="disk"/);
    expect(plain.stdout).toMatch(/export="odd"/);
  });

  it('--map shows holes for never-written and trimmed ranges and data for written ones', async () => {
    type Ext = { offset: number; length: number; type: number; description: string };
    const getMap = async () => {
      const r = await mustRun('nbdinfo', ['--map', '--json', srv.uri('disk')], { server: srv });
      const m = JSON.parse(r.stdout) as Ext[];
      let pos = 0;
      for (const x of m) { expect(x.offset).toBe(pos); pos += x.length; }
      expect(pos).toBe(SIZE);
      return m;
    };
    const typeAt = (m: Ext[], off: number, len: number): Set<number> => {
      const s = new Set<number>();
      for (const x of m) if (x.offset < off + len && x.offset + x.length > off) s.add(x.type);
      return s;
    };
    let m = await getMap();
    expect(m.every((x) => (x.type & 1) === 1), `fresh export not all hole: ${JSON.stringify(m)}`).toBe(true);

    await mustRun('qemu-io', ['-f', 'raw', srv.uri('disk'),
      '-c', `write -P 0x42 ${8 * MiB} ${2 * MiB}`,
      '-c', `write -P 0x43 ${32 * MiB} ${4 * MiB}`,
      '-c', `discard ${33 * MiB} ${2 * MiB}`,
      '-c', 'flush'], { server: srv });
    m = await getMap();
    expect([...typeAt(m, 8 * MiB, 2 * MiB)], 'written range').toEqual([0]);
    expect([...typeAt(m, 32 * MiB, 1 * MiB)], 'written range before trim').toEqual([0]);
    expect([...typeAt(m, 35 * MiB, 1 * MiB)], 'written range after trim').toEqual([0]);
    for (const t of typeAt(m, 33 * MiB, 2 * MiB)) expect(t & 1, `trimmed range: ${JSON.stringify(m)}`).toBe(1);
    for (const t of typeAt(m, 0, 7 * MiB)) expect(t & 1, 'never-written head').toBe(1);
    for (const t of typeAt(m, 11 * MiB, 20 * MiB)) expect(t & 1, 'never-written middle').toBe(1);
    for (const t of typeAt(m, 37 * MiB, SIZE - 37 * MiB)) expect(t & 1, 'never-written tail').toBe(1);
  });

  it('an unknown export name is an error', async () => {
    const r = await run('nbdinfo', ['--no-content', srv.uri('no-such-lun')]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/export|server|not|unknown/i);
  });

  it('a read-only server says so', async () => {
    ro = await startServer({ luns: [{ name: 'disk', size: SIZE }], readOnly: true });
    const j = await infoJson(ro, 'disk');
    expect(j.exports[0]!.is_read_only).toBe(true);
    expect(j.exports[0]!.can_trim ?? false).toBe(false);
    expect(j.exports[0]!.can_zero ?? false).toBe(false);
    expect((await run('nbdinfo', ['--is', 'read-only', ro.uri('disk')])).code).toBe(0);
    expect((await run('nbdinfo', ['--can', 'write', ro.uri('disk')])).code).toBe(2);
    await ro.stop();
    rmrf(ro.dir);
    ro = undefined;
  });
});
