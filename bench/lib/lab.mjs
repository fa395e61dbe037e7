// Two real arrays (alpha, bravo) in this process, each with its remote-link port, joined by a
// real LinkEmulator (a TCP proxy that delays and throttles), the way test/support/mirror-lab.ts does
// it; everything from the compiled dist/ (npm run build first).
import { createServer, connect } from 'node:net';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { REPO, HOST, MiB, die, freePort, until } from './common.mjs';
import { startLinkChild } from './link-process.mjs';

export const SECRET = 'bench-secret-0123456789abcdef';

/**
 * The array service, the link emulator and the mirror driver's classes from `distDir`
 * (default: the repo's dist/; SANBOX_DIST names another, e.g. a build of a clean checkout).
 */
export async function loadDist(distDir = process.env.SANBOX_DIST || join(REPO, 'dist')) {
  const dir = resolve(distDir);
  try {
    if (!existsSync(join(dir, 'control/service.js'))) throw new Error(`${dir}/control/service.js not found`);
    const service = await import(pathToFileURL(join(dir, 'control/service.js')).href);
    const link = await import(pathToFileURL(join(dir, 'link/index.js')).href);
    const mirror = await import(pathToFileURL(join(dir, 'replication/mirror/index.js')).href);
    if (!service.startArray || !link.LinkEmulator) throw new Error('dist/ lacks startArray or LinkEmulator');
    // the data path is internal to the mirror module: bench:mirror --stages wraps its methods
    const dataPath = await import(pathToFileURL(join(dir, 'replication/mirror/data-path.js')).href).catch(() => ({}));
    const resync = await import(pathToFileURL(join(dir, 'replication/mirror/resync.js')).href).catch(() => ({}));
    return { dir, startArray: service.startArray, LinkEmulator: link.LinkEmulator, MirrorNode: mirror.MirrorNode, DataPath: dataPath.DataPath, Resync: resync.Resync, BitmapFile: mirror.BitmapFile, RateLimiter: mirror.RateLimiter };
  } catch (e) {
    die(`cannot load ${dir} (run npm run build first): ${e.message}`);
  }
}

/** Starts an array in a child process (bench/lib/array-child.mjs); resolves once it serves. */
async function startChildArray(lib, cfg) {
  // SANBOX_CHILD_NODE_ARGS: node options for the child only (e.g. "--cpu-prof --cpu-prof-dir=DIR",
  // which NODE_OPTIONS refuses): profiles the secondary of bench:latency --secondary-process
  const nodeArgs = (process.env.SANBOX_CHILD_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...nodeArgs, join(dirname(fileURLToPath(import.meta.url)), 'array-child.mjs'), lib.dir, JSON.stringify(cfg)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise((r) => child.once('exit', r));
  await new Promise((res, rej) => {
    let buf = '';
    const onData = (d) => {
      buf += d;
      if (buf.includes('\n')) {
        child.stdout.off('data', onData);
        try {
          if (JSON.parse(buf.slice(0, buf.indexOf('\n'))).ready) return res();
        } catch { /* below */ }
        rej(new Error(`array ${cfg.name} (child process): unexpected output ${buf.slice(0, 200)}`));
      }
    };
    child.stdout.setEncoding('utf8').on('data', onData);
    child.once('exit', (code, sig) => rej(new Error(`array ${cfg.name} (child process) exited (${code ?? sig}) before it served`)));
  });
  return {
    pid: child.pid,
    child: true,
    async close() {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(t);
    },
  };
}

/**
 * alpha and bravo, each with its remote-link port, joined by one LinkEmulator (routes to-b, to-a).
 * `luns`: { alpha: [{ name, size }], bravo: [...] }. `fsync`: the arrays' `sync` option.
 * `secondaryProcess`: bravo runs in a child process (its own event loop), so its work as the
 * secondary does not share alpha's; `lab.node('bravo')` and `lab.hostDevice('bravo', ..)` are
 * then unavailable, and its events do not reach `onEvent`. `emulatorProcess`: the emulator too
 * (`lab.emu.set` then returns a promise: await it).
 */
export async function makeLab(lib, root, luns, fsync, { secondaryProcess = false, emulatorProcess = false } = {}) {
  const names = ['alpha', 'bravo'];
  const linkPort = { alpha: await freePort(), bravo: await freePort() };
  const emuOptions = {
    name: 'alpha-bravo', a: 'alpha', b: 'bravo',
    routes: [
      { name: 'to-b', listen: { host: HOST, port: 0 }, target: { host: HOST, port: linkPort.bravo }, forward: 'a-to-b' },
      { name: 'to-a', listen: { host: HOST, port: 0 }, target: { host: HOST, port: linkPort.alpha }, forward: 'b-to-a' },
    ],
    // a resync moves MiB-sized frames: a larger queue than the default keeps the proxy from
    // pausing the socket on every chunk (the bandwidth cap still meters every byte)
    queueBytes: 8 * MiB,
  };
  const emu = emulatorProcess ? await childEmulator(lib, emuOptions) : new lib.LinkEmulator(emuOptions);
  if (!emulatorProcess) await emu.start();
  const ports = emulatorProcess ? emu.ports : Object.fromEntries(emu.status().routes.map((r) => [r.name, r.listen.port]));
  const toB = ports['to-b'];
  const toA = ports['to-a'];
  const peers = {
    alpha: [{ array: 'bravo', host: HOST, port: toB, secret: SECRET }],
    bravo: [{ array: 'alpha', host: HOST, port: toA, secret: SECRET }],
  };
  const running = {};
  const listeners = [];
  const lab = {
    emu,
    running,
    node: (n) => running[n].mirrors,
    hostDevice: (n, lun) => {
      const exp = running[n].array.catalog().lookup(lun);
      if (!exp) throw new Error(`no LUN ${lun} on ${n}`);
      return exp.device;
    },
    uri: (lun) => `nbd://${HOST}:${running.alpha.nbd.port}/${lun}`,
    onEvent: (fn) => { listeners.push(fn); return () => listeners.splice(listeners.indexOf(fn), 1); },
    async close() {
      for (const n of names) await running[n]?.close(100).catch(() => undefined);
      await emu.stop().catch(() => undefined);
    },
  };
  try {
    for (const n of names) {
      const cfg = {
        name: n,
        dir: join(root, n),
        nbd: { bind: HOST, port: 0 },
        api: false,
        luns: luns[n],
        sync: fsync,
        remoteLink: { bind: HOST, port: linkPort[n], peers: peers[n] },
      };
      if (n === 'bravo' && secondaryProcess) {
        running[n] = await startChildArray(lib, cfg);
        continue;
      }
      running[n] = await lib.startArray(cfg);
      running[n].array.on('event', (e) => { for (const f of [...listeners]) f(n, e); });
    }
  } catch (e) {
    await lab.close();
    throw e;
  }
  return lab;
}

/**
 * The lab's LinkEmulator in a process of its own (bench/lib/link-child.mjs), as `sanbox up` runs
 * it (in its supervisor, not in an array's process): `set` (both directions) and `status` (its
 * totals and delay queue) return promises; `pid` gives its CPU time.
 */
async function childEmulator(lib, options) {
  const c = await startLinkChild(lib.dir, [JSON.stringify(options)]);
  return {
    pid: c.pid,
    ports: c.ports,
    set: (s) => c.call({ set: { 'a-to-b': s, 'b-to-a': s } }),
    status: async () => (await c.call({ cpu: true })).status,
    stop: () => c.close(),
  };
}

/** Creates mirror `name` of alpha's `lun` with bravo's `lun` as a secondary declared in sync (both are empty). */
export async function createMirror(lab, name, lun, attributes, regionSize) {
  const a = lab.node('alpha');
  await a.create({ lun, name, attributes, ...(regionSize ? { regionSize } : {}) });
  await a.addSecondary(name, { array: 'bravo', lun, synchronized: true });
  await until(() => {
    const img = secondaryOf(lab, name);
    return img && img.link === 'connected' && ['CONSISTENT', 'SYNCHRONIZED'].includes(img.state) && !img.fractured;
  }, 30_000, `mirror ${name}: secondary connected`);
}

/** bravo's image of mirror `name`, as alpha's view shows it. */
export function secondaryOf(lab, name) {
  return lab.node('alpha').get(name).images.find((i) => i.array === 'bravo');
}

/**
 * p50 (us) of a 4 KiB request / 64-byte reply ping-pong through a LinkEmulator at `latencyMs` one
 * way; `emulatorProcess`: the emulator in a child process (as the lab's of makeLab).
 */
export async function probeRtt(lib, latencyMs, rounds, { emulatorProcess = false } = {}) {
  const echo = createServer((s) => {
    s.setNoDelay(true);
    let got = 0;
    s.on('data', (d) => {
      got += d.length;
      while (got >= 4096) { got -= 4096; s.write(Buffer.alloc(64)); }
    });
    s.on('error', () => undefined);
  });
  await new Promise((r) => echo.listen(0, HOST, r));
  const options = {
    name: 'probe', a: 'x', b: 'y',
    routes: [{ name: 'to-y', listen: { host: HOST, port: 0 }, target: { host: HOST, port: echo.address().port }, forward: 'a-to-b' }],
    settings: { 'a-to-b': { latencyMs }, 'b-to-a': { latencyMs } },
  };
  const emu = emulatorProcess ? await childEmulator(lib, options) : new lib.LinkEmulator(options);
  if (!emulatorProcess) await emu.start();
  const port = emulatorProcess ? emu.ports['to-y'] : emu.status().routes[0].listen.port;
  const sock = connect({ host: HOST, port });
  sock.setNoDelay(true);
  await new Promise((r, j) => { sock.once('connect', r); sock.once('error', j); });
  const samples = [];
  const payload = randomBytes(4096);
  try {
    for (let i = 0; i < rounds; i++) {
      const t0 = process.hrtime.bigint();
      await new Promise((r) => {
        let got = 0;
        const on = (d) => { got += d.length; if (got >= 64) { sock.off('data', on); r(); } };
        sock.on('data', on);
        sock.write(payload);
      });
      samples.push(Number(process.hrtime.bigint() - t0) / 1000);
    }
  } finally {
    sock.destroy();
    await emu.stop();
    await new Promise((r) => echo.close(r));
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)];
}
