/**
 * The host resources of a resource group (seed 001): file systems and applications that the
 * cluster manager starts once the storage is ready, in dependency order, and stops before the
 * storage goes. Each is a command triple; the monitor is the only judge of whether it runs, so a
 * start (or stop) counts once its command exited 0 AND the monitor agrees.
 */
import { mkdirSync } from 'node:fs';
import { appendFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { HostResourceSpec } from '../rg/types.js';
import { runCommand, type CommandResult } from './command.js';
import { ResourceError, describeEnd, lastLine, type ResourceErrorCode } from './errors.js';
import { startOrder, stopOrder } from './order.js';

export interface HostResourcesOptions {
  resources: HostResourceSpec[];
  /** added to this process's environment for every command */
  env: Record<string, string>;
  /** owned by the runner: <name>.log per resource, and <name>/ (the commands' cwd, for pid files) */
  dir: string;
  /** details never hold seq, time or type: the caller's event log owns those */
  emit(type: string, details: Record<string, unknown>): void;
  monitorPollMs?: number;
}

/** One direction of a transition; start and stop are mirror images of each other. */
interface Direction {
  command: 'start' | 'stop';
  /** what the monitor must say at the end */
  running: boolean;
  timeoutMs(spec: HostResourceSpec): number;
  code: ResourceErrorCode;
}

const START: Direction = {
  command: 'start',
  running: true,
  timeoutMs: (s) => s.startTimeoutMs,
  code: 'start-failed',
};

const STOP: Direction = {
  command: 'stop',
  running: false,
  timeoutMs: (s) => s.stopTimeoutMs,
  code: 'stop-failed',
};

/** A monitor that ran out of time said nothing: neither running nor stopped. */
function says(result: CommandResult, running: boolean): boolean {
  return !result.timedOut && (result.exitCode === 0) === running;
}

export class HostResources {
  private readonly specs: Map<string, HostResourceSpec>;
  private readonly pollMs: number;
  /** per resource, the transition in progress: a stop asked for during a start waits for it */
  private readonly busy = new Map<string, Promise<unknown>>();

  constructor(private readonly opts: HostResourcesOptions) {
    startOrder(opts.resources); // a bad `after` is refused here, not half-way through a startAll
    this.specs = new Map(opts.resources.map((r) => [r.name, r]));
    this.pollMs = opts.monitorPollMs ?? 250;
    for (const r of opts.resources) mkdirSync(this.resourceDir(r.name), { recursive: true });
  }

  /** running: the monitor exited 0 within timeoutMs (default: the resource's startTimeoutMs). */
  async monitor(name: string, timeoutMs?: number): Promise<{ running: boolean; result: CommandResult }> {
    const spec = this.spec(name);
    const result = await this.run(spec, spec.monitor, timeoutMs ?? spec.startTimeoutMs);
    return { running: says(result, true), result };
  }

  start(name: string): Promise<void> {
    return this.serial(name, () => this.transition(name, START));
  }

  stop(name: string): Promise<void> {
    return this.serial(name, () => this.transition(name, STOP));
  }

  /** In dependency order; the first failure ends it (what depends on the failed one cannot start). */
  async startAll(): Promise<void> {
    for (const name of startOrder(this.opts.resources)) await this.start(name);
  }

  /** Every resource is attempted even after a failure, so one bad stop leaves no other running; the first error is thrown at the end. */
  async stopAll(): Promise<void> {
    let first: unknown;
    for (const name of stopOrder(this.opts.resources)) {
      try {
        await this.stop(name);
      } catch (err) {
        first ??= err;
      }
    }
    if (first !== undefined) throw first;
  }

  async statusAll(): Promise<{ name: string; running: boolean }[]> {
    const names = this.opts.resources.map((r) => r.name);
    const states = await Promise.all(names.map((n) => this.monitor(n)));
    return names.map((name, i) => ({ name, running: states[i]!.running }));
  }

  private async transition(name: string, d: Direction): Promise<void> {
    const spec = this.spec(name);
    const timeoutMs = d.timeoutMs(spec);
    if (says((await this.monitor(name, timeoutMs)).result, d.running)) {
      this.opts.emit(d.running ? 'automation.resource-already-running' : 'automation.resource-already-stopped', { resource: name });
      return;
    }
    this.opts.emit(d.running ? 'automation.resource-starting' : 'automation.resource-stopping', { resource: name });
    const began = performance.now();
    await appendFile(this.logFile(name), `--- ${new Date().toISOString()} ${d.command}: ${spec[d.command]}\n`);
    const result = await this.run(spec, spec[d.command], timeoutMs);
    if (result.timedOut || result.exitCode !== 0)
      throw this.fail(name, d, d.code, result, `${d.command} failed (${describeEnd(result, timeoutMs)}): ${lastLine(result.output)}`);
    // what a start leaves running is in its process group: a lab's site failure kills it with the site (../controller)
    if (d.running) await writeFile(this.pgidFile(name), `${result.pgid}\n`);
    else await rm(this.pgidFile(name), { force: true });
    const disagreeing = await this.awaitMonitor(name, d.running, began + timeoutMs);
    if (disagreeing) {
      const want = d.running ? 'running' : 'stopped';
      throw this.fail(name, d, 'monitor-timeout', disagreeing, `${d.command} exited 0 but the monitor did not say ${want} within ${timeoutMs} ms (last monitor: ${describeEnd(disagreeing, timeoutMs)}): ${lastLine(disagreeing.output)}`);
    }
    this.opts.emit(d.running ? 'automation.resource-started' : 'automation.resource-stopped', { resource: name, durationMs: Math.round(performance.now() - began) });
  }

  /** Polls the monitor until it says `running` (null) or the deadline leaves no room for another poll (its last result). */
  private async awaitMonitor(name: string, running: boolean, deadline: number): Promise<CommandResult | null> {
    for (;;) {
      const { result } = await this.monitor(name, Math.max(1, deadline - performance.now()));
      if (says(result, running)) return null;
      if (deadline - performance.now() <= this.pollMs) return result;
      await sleep(this.pollMs);
    }
  }

  private fail(name: string, d: Direction, code: ResourceErrorCode, r: CommandResult, why: string): ResourceError {
    this.opts.emit(d.running ? 'automation.resource-start-failed' : 'automation.resource-stop-failed', { resource: name, code, exitCode: r.exitCode, signal: r.signal, timedOut: r.timedOut, output: r.output });
    return new ResourceError(code, name, r, `host resource ${name}: ${why}`);
  }

  private run(spec: HostResourceSpec, cmd: string, timeoutMs: number): Promise<CommandResult> {
    const cwd = this.resourceDir(spec.name);
    const env = { ...process.env, ...this.opts.env, SANBOX_RESOURCE: spec.name, SANBOX_RESOURCE_DIR: cwd };
    return runCommand(cmd, { env, cwd, timeoutMs, logFile: this.logFile(spec.name) });
  }

  /** Runs fn after the resource's transition in progress, whatever its outcome. */
  private serial(name: string, fn: () => Promise<void>): Promise<void> {
    const next = (this.busy.get(name) ?? Promise.resolve()).then(fn, fn);
    this.busy.set(name, next.catch(() => undefined));
    return next;
  }

  private spec(name: string): HostResourceSpec {
    const spec = this.specs.get(name);
    if (!spec) throw new Error(`no host resource ${name} (known: ${[...this.specs.keys()].join(', ')})`);
    return spec;
  }

  private logFile(name: string): string {
    return join(this.opts.dir, `${name}.log`);
  }

  private pgidFile(name: string): string {
    return join(this.opts.dir, `${name}.pgid`);
  }

  private resourceDir(name: string): string {
    return join(this.opts.dir, name);
  }
}
