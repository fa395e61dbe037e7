/**
 * Supervision of the SP processes: spawning `sanbox sp serve`, the request/reply protocol over
 * the Node IPC channel (../sp-process/protocol.ts), the SPs' events, and noticing an exit the
 * chassis did not ask for (a crash).
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { chassisSocketPath, type SpInit } from '../sp-process/protocol.js';
import { ChassisError } from './config.js';
import type { ChassisCore, SpHandle } from './core.js';
import { connectIo } from './mirror-channel.js';

/** How long the chassis waits for an SP's answer unless the command says otherwise. */
export const SP_REPLY_TIMEOUT_MS = 120_000;

let nextMsgId = 1;

/** Starts SP `h`'s process and initializes it; resolves once it answered `init`. */
export function spawnSp(core: ChassisCore, h: SpHandle): Promise<void> {
  const { exec, args } = core.opts.spCommand;
  const proc = spawn(exec, [...args, 'sp', 'serve', '--sp', h.name], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  h.proc = proc;
  h.pid = proc.pid ?? null;
  h.port = null;
  h.expectExit = false;
  for (const s of [proc.stdout!, proc.stderr!]) createInterface({ input: s }).on('line', (line) => core.opts.log?.(`[SP ${h.name}] ${line}`));
  proc.on('message', (raw: unknown) => onMessage(core, h, raw));
  h.exited = new Promise<void>((resolve) => {
    proc.on('exit', (code, signal) => {
      const detectedAt = Date.now();
      onExit(core, h, code, signal);
      if (!h.expectExit && !core.closing) core.onCrash(h, code, signal, detectedAt);
      resolve();
    });
  });
  const init: SpInit = {
    sp: h.name,
    array: core.array.name,
    dir: core.array.dir,
    nbd: { bind: core.opts.nbd.bind, port: core.configuredPort(h.name), ...(core.opts.nbd.tls ? { tls: core.opts.nbd.tls } : {}), ...(core.opts.nbd.memory ? { memory: core.opts.nbd.memory } : {}) },
    luns: core.lunSpecs(),
    cacheBytes: core.opts.sps.cacheBytes,
    cache: core.opts.sps.cache,
    battery: core.battery.view(),
    readOnly: core.opts.readOnly,
    chassisPath: { socket: chassisSocketPath(core.array.dir), routes: core.routes },
    diskFaults: [...core.diskFaults].map(([lun, spec]) => ({ lun, spec })),
  };
  return send(h, { type: 'init', init }).then(() => connectIo(core, h));
}

function onMessage(core: ChassisCore, h: SpHandle, raw: unknown): void {
  const m = raw as { type: string; id?: number; ok?: boolean; result?: unknown; error?: string; event?: Record<string, unknown> };
  if (m.type === 'reply' && m.id !== undefined) {
    const p = h.pending.get(m.id);
    if (!p) return;
    h.pending.delete(m.id);
    if (m.ok) p.resolve(m.result);
    else p.reject(new ChassisError('sp-error', 500, `SP ${h.name}: ${m.error}`));
  } else if (m.type === 'event' && m.event) {
    onSpEvent(core, h, m.event);
  }
}

/** The process is gone: fail what waits for it and forget its channels and sessions. */
function onExit(core: ChassisCore, h: SpHandle, code: number | null, signal: NodeJS.Signals | null): void {
  const err = new ChassisError('sp-down', 409, `SP ${h.name} exited (code ${code}, signal ${signal})`);
  for (const p of h.pending.values()) p.reject(err);
  h.pending.clear();
  h.proc = null;
  h.pid = null;
  h.port = null;
  h.io?.close();
  h.io = null;
  for (const [k] of core.sessionCounts) if (k.startsWith(`${h.name}:`)) core.sessionCounts.delete(k);
}

/** Session events feed the session counts (and the StorageArray); the rest is published. */
function onSpEvent(core: ChassisCore, h: SpHandle, ev: Record<string, unknown>): void {
  const { type, ...rest } = ev;
  if (type === 'session.opened' || type === 'session.closed') {
    const key = `${h.name}:${String(rest.export)}`;
    const n = (core.sessionCounts.get(key) ?? 0) + (type === 'session.opened' ? 1 : -1);
    if (n > 0) core.sessionCounts.set(key, n);
    else core.sessionCounts.delete(key);
    core.emitter.emit(type === 'session.opened' ? 'session-open' : 'session-close', { id: `${h.name}:${String(rest.session)}`, remote: rest.remote, export: rest.export, reason: rest.reason });
    return;
  }
  core.publish(String(type), { ...rest, sp: h.name });
}

function send<T = any>(h: SpHandle, msg: Record<string, unknown>, timeoutMs = SP_REPLY_TIMEOUT_MS): Promise<T> {
  const proc = h.proc;
  if (!proc || !proc.connected) return Promise.reject(new ChassisError('sp-down', 409, `SP ${h.name} is not running`));
  const id = nextMsgId++;
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => {
      h.pending.delete(id);
      reject(new ChassisError('timeout', 504, `SP ${h.name} did not answer ${String(msg.op ?? msg.type)} within ${timeoutMs} ms`));
    }, timeoutMs);
    h.pending.set(id, {
      resolve: (v) => {
        clearTimeout(t);
        resolve(v as T);
      },
      reject: (e) => {
        clearTimeout(t);
        reject(e);
      },
    });
    proc.send({ ...msg, id });
  });
}

/** Runs command `op` on SP `h` (../sp-process/sp.ts `command`). */
export function cmd<T = any>(h: SpHandle, op: string, args: Record<string, unknown> = {}, timeoutMs?: number): Promise<T> {
  return send<T>(h, { type: 'cmd', op, args }, timeoutMs);
}
