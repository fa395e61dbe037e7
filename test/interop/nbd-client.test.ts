// nbd-client (the Linux kernel client's userspace tool) lists the exports.
// This machine kind has no nbd kernel module, so only -l (NBD_OPT_LIST) runs here.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MiB, mustRun, rmrf, startServer, type NbdServer } from './harness.js';

let srv: NbdServer;

describe('nbd-client', () => {
  beforeAll(async () => {
    srv = await startServer({ luns: [{ name: 'alpha', size: 8 * MiB }, { name: 'bravo', size: 16 * MiB }, { name: 'lun-3', size: 4 * MiB }] });
  });
  afterAll(async () => {
    if (srv) {
      await srv.stop();
      rmrf(srv.dir);
    }
  });

  it('nbd-client -l lists every export', async () => {
    const r = await mustRun('nbd-client', ['-l', srv.host, String(srv.port)], { server: srv, timeoutMs: 30_000 });
    // each line is NAME, or NAME: DESCRIPTION when the server sends one
    const lines = r.stdout.split('\n').map((l) => l.trim()).filter((l) => l && !/^Negotiation/.test(l));
    const names = lines.map((l) => l.replace(/: .*$/, ''));
    expect(names.sort(), r.stdout).toEqual(['alpha', 'bravo', 'lun-3']);
  });

  it('the server is still healthy after the list connection', async () => {
    const r = await mustRun('nbdinfo', ['--size', srv.uri('bravo')], { server: srv });
    expect(r.stdout.trim()).toBe(String(16 * MiB));
  });
});
