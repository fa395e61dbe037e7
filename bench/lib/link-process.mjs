// Starts bench/lib/link-child.mjs: a LinkEmulator in a process of its own, driven over its stdin.
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

/**
 * `args`: link-child.mjs's arguments after DIST_DIR (a target port with seed and poll, or the
 * options as JSON); `nodeArgs`: node options for the child (e.g. --cpu-prof). Resolves once it
 * listens: { port, ports, pid, call(request), close() }.
 */
export async function startLinkChild(distDir, args, nodeArgs = []) {
  const script = join(dirname(fileURLToPath(import.meta.url)), 'link-child.mjs');
  const child = spawn(process.execPath, [...nodeArgs, script, distDir, ...args.map(String)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const waiting = new Map();
  let nextId = 1;
  let ready;
  const readyP = new Promise((res, rej) => {
    ready = res;
    child.once('exit', (code, sig) => rej(new Error(`the emulator process exited (${code ?? sig})`)));
  });
  createInterface({ input: child.stdout }).on('line', (line) => {
    const m = JSON.parse(line);
    if (m.ready) return ready(m);
    const w = waiting.get(m.id);
    waiting.delete(m.id);
    if (m.error) w.rej(new Error(m.error));
    else w.res(m);
  });
  const { port, ports } = await readyP;
  const call = (req) => new Promise((res, rej) => {
    const id = nextId++;
    waiting.set(id, { res, rej });
    child.stdin.write(JSON.stringify({ id, ...req }) + '\n');
  });
  const exited = new Promise((r) => child.once('exit', r));
  return { port, ports, pid: child.pid, call, close: () => { child.stdin.end(); return exited; } };
}
