// The monitor daemon as other processes meet it (the executables as child processes, each test its
// own state directory, no arrays): ten prmd racing to start it, the TCP listener for other hosts
// and its token, and its socket fed garbage. Return codes of prmd and chkmon: tools.test.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { requireBuild } from '../../support/paths.js';
import { DEAD_INSTANCE, LineClient, MonitorSandbox, alive, ask, daemonPid, servePids, waitFor } from '../../support/monitor-tools.js';
import { EXIT_ALREADY_RUNNING } from '../../../src/cli/monitor/index.js';

let sb: MonitorSandbox;
beforeAll(async () => {
  requireBuild('cli/monitor/index.js');
  sb = await MonitorSandbox.create();
});
afterAll(async () => {
  await sb?.cleanup();
});

const names = (reply: any): string[] => reply.resources.map((r: any) => `${r.appName}/${r.deviceGroup}`).sort();
/** SHOWALL without what moves with the clock alone (seconds to the next poll). */
const snapshot = async (dir: string) => (await ask(dir, { msgType: 'SHOWALL' })).resources.map(({ timeRemaining: _, ...r }: any) => r);

describe('starting the daemon', () => {
  it(`10 prmd at the same instant: all exit 0, exactly one daemon serves (the losers exit ${EXIT_ALREADY_RUNNING}), all 10 resources listed`, async () => {
    const dir = await sb.stateDir();
    try {
      const groups = Array.from({ length: 10 }, (_, i) => `race${i}`);
      const runs = await Promise.all(groups.map((g) => sb.prmd(dir, ['-n', 'Race', '-g', g, '-i', DEAD_INSTANCE, '-t', '3600', '-r', 'yes'])));
      runs.forEach((r, i) => expect(r.code, `prmd ${i}: ${r.err}`).toBe(0));

      // exactly one `monitor serve --state DIR` remains (a loser may still be on its way out)
      const pid = await daemonPid(dir);
      expect(pid).toBeGreaterThan(0);
      const serving = await waitFor(async () => {
        const pids = await servePids(dir);
        return pids.length === 1 && pids;
      }, 15_000, 'one daemon process for the state dir');
      expect(serving).toEqual([pid]);
      const pidOut = await sb.chkmon(dir, ['-pid']);
      expect(pidOut.out.trim()).toBe(String(pid));

      // the log: one daemon started; every other starter said it lost (exit 4, stderr to the log)
      const log = await readFile(join(dir, 'monitor.log'), 'utf8');
      expect(log.match(/ monitor\.started /g)).toHaveLength(1);
      const show = await sb.chkmon(dir, ['-show', '--json']);
      expect(show.code).toBe(0);
      expect(names(show.json)).toEqual(groups.map((g) => `Race/${g}`).sort());

      // one more starter now: exits 4 at once, the daemon serves on
      const late = await sb.run('sanbox', ['monitor', 'serve', '--state', dir, '--quiet']);
      expect(late.code).toBe(EXIT_ALREADY_RUNNING);
      expect(late.err).toMatch(/already runs/);
      expect(alive(pid!)).toBe(true);
      expect(await servePids(dir)).toEqual([pid]);
    } finally {
      await sb.stopDaemon(dir);
    }
  });
});

describe('the TCP listener (--listen, --token)', () => {
  const TOKEN = 'tok-0123456789abcdefghij'; // 24 characters

  it('answers with the token, refuses without it or with a wrong one; prmd without the token adds nothing', async () => {
    expect(TOKEN).toHaveLength(24);
    const dir = await sb.stateDir();
    try {
      const { info } = await sb.serve(dir, ['--listen', '127.0.0.1:0', '--token', TOKEN]);
      expect(info.tcp).toMatch(/^127\.0\.0\.1:\d+$/);
      expect((await ask(dir, { msgType: 'ADD', appName: 'A', deviceGroup: 'G', instance: DEAD_INSTANCE, interval: 3600, resync: 'yes' })).code).toBe(0);
      const host = ['--host', info.tcp];
      const [good, none, wrong, pid, add] = await Promise.all([
        sb.run('chkmon', [...host, '--token', TOKEN, '-show']),
        sb.run('chkmon', [...host, '-show']),
        sb.run('chkmon', [...host, '--token', 'x'.repeat(24), '-show']),
        sb.run('chkmon', [...host, '--token', TOKEN, '-pid']),
        sb.run('prmd', [...host, '-n', 'A', '-g', 'R', '-i', DEAD_INSTANCE, '-t', '30', '-r', 'yes']),
      ]);
      expect(good.code, good.err).toBe(0);
      expect(good.out).toMatch(/\nA\s+G\s/);
      expect(none.code).toBe(10);
      expect(none.err).toMatch(/refused/);
      expect(wrong.code).toBe(10);
      expect(wrong.err).toMatch(/refused: wrong token/);
      expect(pid.out.trim()).toBe(String(info.pid));
      expect(add.code).toBe(10);
      expect(add.err).toMatch(/refused/);
      // checked through the local socket: nothing added, and no daemon was started elsewhere
      expect(names(await ask(dir, { msgType: 'SHOWALL' }))).toEqual(['A/G']);
      // the same prmd with the token adds
      const ok = await sb.run('prmd', [...host, '--token', TOKEN, '-n', 'A', '-g', 'R', '-i', DEAD_INSTANCE, '-t', '30', '-r', 'yes']);
      expect(ok.code, ok.err).toBe(0);
      expect(names(await ask(dir, { msgType: 'SHOWALL' }))).toEqual(['A/G', 'A/R']);
    } finally {
      await sb.stopDaemon(dir);
    }
  });

  it('--listen without --token (or with a short one) is a usage error: monitor serve exits 2, nothing starts', async () => {
    const dir = await sb.stateDir();
    try {
      const [noToken, short] = await Promise.all([
        sb.run('sanbox', ['monitor', 'serve', '--state', dir, '--listen', '127.0.0.1:0', '--quiet']),
        sb.run('sanbox', ['monitor', 'serve', '--state', dir, '--listen', '127.0.0.1:0', '--token', 'short', '--quiet']),
      ]);
      expect(noToken.code, noToken.err).toBe(2);
      expect(noToken.err).toMatch(/--listen needs --token/);
      expect(short.code, short.err).toBe(2);
      expect(await daemonPid(dir)).toBeUndefined();
      expect((await sb.chkmon(dir, ['-pid'])).code).toBe(3);
    } finally {
      await sb.stopDaemon(dir);
    }
  });
});

describe('the socket protocol against garbage', () => {
  it('every bad message gets code 10 and a message, changes nothing, and never disturbs another client', async () => {
    const dir = await sb.stateDir();
    try {
      const { info } = await sb.serve(dir);
      const sock = join(dir, 'prm.sock');
      expect((await stat(sock)).mode & 0o777).toBe(0o600);
      for (const g of ['G', 'H']) expect((await ask(dir, { msgType: 'ADD', appName: 'A', deviceGroup: g, instance: DEAD_INSTANCE, interval: 3600, resync: 'yes' })).code).toBe(0);
      // after the first poll nothing moves for an hour but timeRemaining
      await waitFor(async () => (await snapshot(dir)).every((r: any) => r.lastPoll !== null && r.lastError !== null), 10_000, 'the first polls');
      const before = await snapshot(dir);

      const bad = await LineClient.open(sock);
      const good = await LineClient.open(sock);
      const add = { msgType: 'ADD', appName: 'A', deviceGroup: 'X', instance: DEAD_INSTANCE, interval: 30, resync: 'yes' };
      const garbage: Array<[string, string, RegExp]> = [
        ['not JSON', 'hello, monitor', /malformed message/],
        ['a JSON array', '[{"msgType":"SHOWALL"}]', /JSON object/],
        ['a JSON string', '"SHOWALL"', /JSON object/],
        ['null', 'null', /JSON object/],
        ['no msgType', '{}', /unknown msgType/],
        ['an unknown msgType', '{"msgType":"FORMAT_ALL"}', /unknown msgType "FORMAT_ALL"/],
        ['a msgType of the wrong type', '{"msgType":3}', /unknown msgType 3/],
        ['an unknown field', '{"msgType":"SHOWALL","force":true}', /unknown field "force"/],
        ['ADD with interval 0', JSON.stringify({ ...add, interval: 0 }), /monitor interval/],
        ['ADD with interval 1.5', JSON.stringify({ ...add, interval: 1.5 }), /monitor interval/],
        ['ADD with interval "30"', JSON.stringify({ ...add, interval: '30' }), /monitor interval/],
        ['ADD with interval 86401', JSON.stringify({ ...add, interval: 86401 }), /monitor interval/],
        ['ADD without resync', JSON.stringify({ ...add, resync: undefined }), /resync/],
        ['ADD of a bad name', JSON.stringify({ ...add, deviceGroup: '../x' }), /deviceGroup/],
        ['CHANGEALL with interval -5', '{"msgType":"CHANGEALL","interval":-5}', /monitor interval/],
        ['LOAD of a bad resource', JSON.stringify({ msgType: 'LOAD', resources: [{ appName: 'A', deviceGroup: 'Y', instance: DEAD_INSTANCE, intervalSeconds: 0, autorecover: true }] }), /interval/],
        ['WAIT without states', '{"msgType":"WAIT","appName":"A","deviceGroup":"G","timeout":1}', /states/],
      ];
      for (const [what, line, msg] of garbage) {
        const r = await bad.request(line);
        expect(r, what).toMatchObject({ ok: false, code: 10 });
        expect(r.message, what).toMatch(msg);
        // the other client, between two garbage lines: correct answers
        const [all, pid] = [await good.request({ msgType: 'SHOWALL' }), await good.request({ msgType: 'GETPID' })];
        expect(all.code, what).toBe(0);
        expect(names(all), what).toEqual(['A/G', 'A/H']);
        expect(pid, what).toMatchObject({ code: 0, pid: info.pid });
      }
      expect(bad.isOpen).toBe(true); // bad messages are answered, the connection stays

      // a 70 KiB line: refused and the connection closed
      const big = JSON.stringify({ msgType: 'SHOWALL', appName: 'x'.repeat(70 * 1024) });
      const r = await bad.request(big);
      expect(r).toMatchObject({ ok: false, code: 10 });
      expect(r.message).toMatch(/over 65536 bytes refused/);
      await Promise.race([bad.closed, new Promise((_, rej) => setTimeout(() => rej(new Error('the connection stayed open after a 70 KiB line')), 5000))]);
      // the same without a newline: refused once it passes the limit, closed
      const endless = await LineClient.open(sock);
      endless.sendRaw('y'.repeat(70 * 1024));
      const e = await endless.next(5000);
      expect(e).toMatchObject({ ok: false, code: 10 });
      await Promise.race([endless.closed, new Promise((_, rej) => setTimeout(() => rej(new Error('still open')), 5000))]);

      expect((await good.request({ msgType: 'SHOWALL' })).code).toBe(0);
      good.close();
      expect(await snapshot(dir)).toEqual(before);
      expect(alive(info.pid)).toBe(true);
    } finally {
      await sb.stopDaemon(dir);
    }
  });
});
