// Real clients nobody here wrote, through NBD, on a synchronously mirrored LUN: nbdcopy, fio with
// verify, qemu-img compare. Every byte written to the primary is on the secondary's image file.
import { describe, it, expect, afterEach } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeLab, until, type Lab } from '../../support/mirror-lab.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;
let lab: Lab | null = null;
afterEach(async () => {
  await lab?.close();
  lab = null;
});

async function mirroredLab(): Promise<Lab> {
  const l = await makeLab(['alpha', 'bravo'], [{ name: 'disk0', size: 64 * MiB }], { latencyMs: 1 });
  await l.node('alpha').create({ lun: 'disk0', name: 'm0' });
  await l.node('alpha').addSecondary('m0', { array: 'bravo', lun: 'disk0' });
  await until(() => l.node('alpha').get('m0').images[1]!.state === 'CONSISTENT' || l.node('alpha').get('m0').images[1]!.state === 'SYNCHRONIZED', 20_000, 'initial sync');
  return l;
}

const imagePath = (l: Lab, a: string) => l.sites[a]!.running!.array.getLun('disk0')!.imagePath;

describe('real clients on a mirrored LUN', () => {
  it('nbdcopy of a random image: qemu-img compare of primary and secondary image files says identical', async () => {
    lab = await mirroredLab();
    const src = join(tmpdir(), `sanbox-src-${process.pid}.raw`);
    await writeFile(src, Buffer.concat([randomBytes(20 * MiB), Buffer.alloc(24 * MiB), randomBytes(20 * MiB)]));
    try {
      const uri = `nbd://127.0.0.1:${lab.sites.alpha!.running!.nbd.port}/disk0`;
      await run('nbdcopy', ['--connections=4', src, uri]);
      await run('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', src, imagePath(lab, 'bravo')]);
      await run('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', imagePath(lab, 'alpha'), imagePath(lab, 'bravo')]);
      const v = await lab.node('alpha').verify('m0');
      expect(v.identical).toBe(true);
      expect(v.regionsCompared).toBe(1024);
    } finally {
      await rm(src, { force: true });
    }
  });

  it('fio writes with verify=crc32c through NBD; the secondary image is identical', async () => {
    lab = await mirroredLab();
    const port = lab.sites.alpha!.running!.nbd.port;
    const { stdout } = await run('fio', [
      '--name=mirror',
      '--ioengine=nbd',
      `--uri=nbd://127.0.0.1:${port}/disk0`,
      '--rw=randwrite',
      '--bs=4k',
      '--iodepth=16',
      '--size=16M',
      '--verify=crc32c',
      '--verify_state_save=0',
      '--do_verify=1',
      '--output-format=json',
    ]);
    const j = JSON.parse(stdout.slice(stdout.indexOf('{')));
    expect(j.jobs[0].error).toBe(0);
    expect(j.jobs[0].write.total_ios).toBeGreaterThan(1000);
    await run('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', imagePath(lab, 'alpha'), imagePath(lab, 'bravo')]);
    expect((await lab.node('alpha').verify('m0')).identical).toBe(true);
  });

  it('the secondary refuses host writes over NBD (EPERM), and nbdinfo can still see it', async () => {
    lab = await mirroredLab();
    const uri = `nbd://127.0.0.1:${lab.sites.bravo!.running!.nbd.port}/disk0`;
    const w = await run('qemu-io', ['-f', 'raw', '-c', 'write -P 0x55 0 4k', uri]).then(
      (r) => r.stdout + r.stderr,
      (e) => String(e.stdout) + String(e.stderr),
    );
    // the export says READ_ONLY: qemu-io refuses to open it read-write (Permission denied);
    // a client that ignored the flag would get EPERM for the write
    expect(w).toMatch(/Operation not permitted|EPERM|failed|Permission denied/);
    const { stdout } = await run('nbdinfo', ['--json', uri]);
    expect(JSON.parse(stdout).exports[0]['export-size']).toBe(64 * MiB);
    // nothing was written there
    expect((await lab.sites.bravo!.running!.array.device('disk0')!.read(0, 4096)).equals(Buffer.alloc(4096))).toBe(true);
  });
});
