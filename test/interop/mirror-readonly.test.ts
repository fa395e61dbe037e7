// A mirror secondary refuses every host write (EPERM), so its exports say so: nbdinfo sees
// READ_ONLY in the transmission flags of the secondary's LUN and not in the primary's, on a
// single-process array and on both SP ports of a two-SP array (whose SPs learn the role from the
// chassis's host routes). The flag is settled when a client opens the export: after a promote a
// new connection sees the new roles.
import { afterEach, describe, expect, it } from 'vitest';
import { NbdClient } from '../../src/check/nbd-client/index.js';
import { makeLab as makeArrays, until, type Lab } from '../support/mirror-lab.js';
import { makeLab as makeSpLab, mirrorLun, type MirrorSpLab } from '../support/mirror-sp-lab.js';
import { MiB, SERVER_KIND, mustRun, run } from './harness.js';

interface ExportInfo {
  'export-name': string;
  is_read_only: boolean;
  can_write?: boolean;
  can_trim?: boolean;
  can_zero?: boolean;
}

async function info(uri: string): Promise<ExportInfo> {
  const r = await mustRun('nbdinfo', ['--json', '--no-content', uri]);
  const j = JSON.parse(r.stdout) as { exports: ExportInfo[] };
  expect(j.exports).toHaveLength(1);
  return j.exports[0]!;
}

async function errnoOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    return String((e as { errno?: string }).errno ?? (e as Error).message);
  }
}

const readOnly = async (uri: string): Promise<boolean> => (await info(uri)).is_read_only;

/** Waits until nbdinfo sees `want` on `uri` (a two-SP array's SPs take new routes within a second). */
async function seeReadOnly(uri: string, want: boolean, what: string): Promise<void> {
  let last: boolean | undefined;
  await until(async () => (last = await readOnly(uri)) === want, 10_000, `${what}: is_read_only ${want}`).catch((e: Error) => {
    throw new Error(`${e.message} (nbdinfo still says ${String(last)})`);
  });
}

let lab: Lab | null = null;
let spLab: MirrorSpLab | null = null;
afterEach(async () => {
  await lab?.close();
  lab = null;
  await spLab?.close();
  spLab = null;
});

describe.skipIf(SERVER_KIND !== 'sanbox')('the exports of a mirror secondary are READ_ONLY', { timeout: 120_000 }, () => {
  it('single-process arrays: the secondary says read-only, the primary not; a promote shows on new connections', async () => {
    lab = await makeArrays(['alpha', 'bravo'], [
      { name: 'disk0', size: 16 * MiB },
      { name: 'disk1', size: 16 * MiB },
    ], { timers: { reconnectMaxMs: 300 } });
    const uri = (site: string, lun = 'disk0') => `nbd://127.0.0.1:${lab!.sites[site]!.running!.nbd.port}/${lun}`;
    // nothing mirrored: both writable
    expect(await readOnly(uri('alpha'))).toBe(false);
    expect(await readOnly(uri('bravo'))).toBe(false);

    const alpha = lab.node('alpha');
    await alpha.create({ lun: 'disk0', name: 'm0' });
    await alpha.addSecondary('m0', { array: 'bravo', lun: 'disk0', synchronized: true });
    await until(() => alpha.get('m0').images[1]!.link === 'connected', 10_000, 'link up');

    const sec = await info(uri('bravo'));
    expect(sec).toMatchObject({ 'export-name': 'disk0', is_read_only: true });
    expect(sec.can_trim ?? false).toBe(false);
    expect(sec.can_zero ?? false).toBe(false);
    expect((await run('nbdinfo', ['--can', 'write', uri('bravo')])).code).toBe(2);
    expect((await run('nbdinfo', ['--is', 'read-only', uri('bravo')])).code).toBe(0);
    expect(await info(uri('alpha'))).toMatchObject({ is_read_only: false, can_trim: true, can_zero: true });
    // a LUN of the secondary array that is no image stays writable
    expect(await readOnly(uri('bravo', 'disk1'))).toBe(false);
    // what the flag promises: a write to the secondary is refused anyway (qemu-io opens it read-write with -f raw)
    const w = await run('qemu-io', ['-f', 'raw', '-c', 'write -P 0x5a 0 4k', uri('bravo')]);
    expect(`${w.stdout}${w.stderr}`).toMatch(/read-only|Permission denied|Operation not permitted/i);

    // promote the secondary: new connections see the new roles (alpha is demoted when it hears of
    // it); a connection opened before keeps the flags it was given (a reconnect is needed)
    const early = await NbdClient.connect(uri('bravo'));
    await lab.node('bravo').promote('m0');
    await seeReadOnly(uri('bravo'), false, 'bravo after its promote');
    expect(await errnoOf(early.write(0, Buffer.alloc(4096, 1))), 'write on a connection opened while bravo was secondary').toBe('EPERM');
    await early.close();
    const late = await NbdClient.connect(uri('bravo'));
    await late.write(0, Buffer.alloc(4096, 2));
    await late.close();
    await until(() => lab!.node('alpha').roleOf(0)?.role === 'secondary', 10_000, 'alpha demoted');
    await seeReadOnly(uri('alpha'), true, 'alpha after the demote');
  });

  it('two-SP array: both SP ports say read-only for a secondary LUN, neither for a primary one', async () => {
    spLab = await makeSpLab({ mode: 'in-process' });
    const l = spLab;
    for (const sp of ['A', 'B'] as const) expect(await readOnly(l.uri(sp, 'disk0')), `SP ${sp} disk0 before any mirror`).toBe(false);
    // disk0: bravo primary, two-SP alpha secondary; disk1: alpha primary, bravo secondary
    await mirrorLun(l.bravoNode(), 'alpha', 'disk0', 'm0', true);
    await mirrorLun(l.alphaNode(), 'bravo', 'disk1', 'm1', true);
    for (const sp of ['A', 'B'] as const) {
      await seeReadOnly(l.uri(sp, 'disk0'), true, `alpha SP ${sp} disk0 (secondary)`);
      expect(await readOnly(l.uri(sp, 'disk1')), `alpha SP ${sp} disk1 (primary)`).toBe(false);
    }
    expect(await readOnly(l.bravoUri('disk0')), 'bravo disk0 (primary)').toBe(false);
    expect(await readOnly(l.bravoUri('disk1')), 'bravo disk1 (secondary)').toBe(true);
  });
});
