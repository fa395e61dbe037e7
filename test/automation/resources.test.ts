// Host resources of a resource group (seed 001): the start/stop order by `after`, and the runner
// driving real /bin/sh commands: a start that leaves a daemon behind, idempotence, a failing start,
// a start timeout that kills the command's process group, a monitor that never agrees, and a
// stopAll that goes on after a failed stop.
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HostResources, ResourceError, runCommand, startOrder, stopOrder } from '../../src/automation/resources/index.js';
import type { HostResourceSpec } from '../../src/automation/rg/types.js';

function res(name: string, over: Partial<HostResourceSpec> = {}): HostResourceSpec {
  return {
    name,
    after: [],
    // a marker file stands for "running" where no process is needed
    start: 'touch "$SANBOX_RESOURCE_DIR/up"',
    stop: 'rm -f "$SANBOX_RESOURCE_DIR/up"',
    monitor: 'test -f "$SANBOX_RESOURCE_DIR/up"',
    startTimeoutMs: 2000,
    stopTimeoutMs: 2000,
    ...over,
  };
}

describe('startOrder / stopOrder', () => {
  it('orders by after, keeping the listed order among the ready ones', () => {
    const rs = [res('app', { after: ['fs', 'db'] }), res('fs'), res('db', { after: ['fs'] }), res('web')];
    expect(startOrder(rs)).toEqual(['fs', 'db', 'app', 'web']);
    expect(stopOrder(rs)).toEqual(['web', 'app', 'db', 'fs']);
    expect(startOrder([res('b'), res('a')])).toEqual(['b', 'a']);
  });

  it('refuses an unknown dependency, a self-dependency, a duplicate and a cycle (named)', () => {
    expect(() => startOrder([res('a', { after: ['nope'] })])).toThrow(/a is after nope, which is not a resource/);
    expect(() => startOrder([res('a', { after: ['a'] })])).toThrow(/a lists itself/);
    expect(() => startOrder([res('a'), res('a')])).toThrow(/a is defined twice/);
    const cyclic = [res('x'), res('a', { after: ['c'] }), res('b', { after: ['a', 'x'] }), res('c', { after: ['b'] })];
    expect(() => startOrder(cyclic)).toThrow(/cycle \(each after the next\): a -> c -> b -> a/);
  });
});

/** Alive and not a zombie: this container's PID 1 does not reap orphans, so a killed orphan stays a zombie that kill -0 still finds. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
}

describe('HostResources (real processes)', () => {
  let dir: string;
  let events: { type: string; details: Record<string, unknown> }[];
  const pidFiles: string[] = [];

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'sanbox-resources-'));
    events = [];
  });

  afterEach(() => {
    // a failed test must not leave a sleep behind
    for (const f of pidFiles.splice(0)) {
      if (!existsSync(f)) continue;
      try {
        process.kill(Number(readFileSync(f, 'utf8')), 'SIGKILL');
      } catch {
        // gone already
      }
    }
    rmSync(dir, { recursive: true, force: true });
  });

  function runner(resources: HostResourceSpec[]): HostResources {
    const emit = (type: string, details: Record<string, unknown>): void => {
      for (const k of ['seq', 'time', 'type']) expect(details).not.toHaveProperty(k);
      events.push({ type, details });
    };
    return new HostResources({ resources, env: { GREETING: 'hello' }, dir, emit, monitorPollMs: 50 });
  }
  const types = (): string[] => events.map((e) => `${e.type} ${String(e.details.resource)}`);
  const pidOf = (name: string): number => Number(readFileSync(join(dir, name, 'pid'), 'utf8'));

  it('starts a daemon that outlives its start command, monitors it and stops it', async () => {
    pidFiles.push(join(dir, 'daemon', 'pid'));
    // The subshell stays the sleep's parent and reaps it when it is killed (see alive()).
    const daemon = res('daemon', {
      start: 'echo "$GREETING from $SANBOX_RESOURCE"; (sleep 30 & echo $! > "$SANBOX_RESOURCE_DIR/pid"; wait) &',
      stop: 'kill $(cat "$SANBOX_RESOURCE_DIR/pid")',
      monitor: 'kill -0 $(cat "$SANBOX_RESOURCE_DIR/pid")',
    });
    const hr = runner([res('fs'), { ...daemon, after: ['fs'] }]);
    const began = Date.now();
    await hr.startAll();
    expect(Date.now() - began).toBeLessThan(1500);
    expect(await hr.statusAll()).toEqual([{ name: 'fs', running: true }, { name: 'daemon', running: true }]);
    expect(alive(pidOf('daemon'))).toBe(true);
    expect(readFileSync(join(dir, 'daemon.log'), 'utf8')).toContain('hello from daemon');
    await hr.stopAll();
    expect(alive(pidOf('daemon'))).toBe(false);
    expect((await hr.monitor('daemon')).running).toBe(false);
    expect(types()).toEqual([
      'automation.resource-starting fs', 'automation.resource-started fs',
      'automation.resource-starting daemon', 'automation.resource-started daemon',
      'automation.resource-stopping daemon', 'automation.resource-stopped daemon',
      'automation.resource-stopping fs', 'automation.resource-stopped fs',
    ]);
  });

  it('is idempotent: a second start finds it running, a second stop finds it stopped', async () => {
    const hr = runner([res('fs')]);
    await hr.start('fs');
    await hr.start('fs');
    await hr.stop('fs');
    await hr.stop('fs');
    expect(types()).toEqual([
      'automation.resource-starting fs', 'automation.resource-started fs', 'automation.resource-already-running fs',
      'automation.resource-stopping fs', 'automation.resource-stopped fs', 'automation.resource-already-stopped fs',
    ]);
  });

  it('a start that exits 3 is start-failed, with its output', async () => {
    const hr = runner([res('db', { start: 'echo preparing; echo "no such volume" >&2; exit 3' })]);
    const err = await hr.start('db').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ResourceError);
    expect(err).toMatchObject({ code: 'start-failed', resource: 'db' });
    expect((err as Error).message).toBe('host resource db: start failed (exit 3): "no such volume"');
    const failed = events.find((e) => e.type === 'automation.resource-start-failed')!;
    expect(failed.details).toMatchObject({ resource: 'db', exitCode: 3, signal: null, timedOut: false, output: 'preparing\nno such volume\n' });
  });

  it('a start that times out has its whole process group killed', async () => {
    pidFiles.push(join(dir, 'slow', 'pid'));
    const hr = runner([res('slow', { start: 'sleep 30 & echo $! > "$SANBOX_RESOURCE_DIR/pid"; wait', startTimeoutMs: 300 })]);
    const err = await hr.start('slow').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'start-failed', message: expect.stringContaining('timed out after 300 ms') });
    expect(events.at(-1)!.details).toMatchObject({ timedOut: true, signal: 'SIGTERM' });
    const child = pidOf('slow');
    await expect.poll(() => alive(child), { timeout: 1000, interval: 20 }).toBe(false);
  });

  it('a monitor that never agrees is monitor-timeout', async () => {
    const hr = runner([res('ghost', { start: 'true', monitor: 'echo "not yet"; exit 1', startTimeoutMs: 400 })]);
    const began = Date.now();
    const err = await hr.start('ghost').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'monitor-timeout', resource: 'ghost' });
    expect((err as Error).message).toMatch(/did not say running within 400 ms \(last monitor: exit 1\): "not yet"/);
    expect(Date.now() - began).toBeLessThan(1000);
    expect(events.at(-1)).toMatchObject({ type: 'automation.resource-start-failed', details: { code: 'monitor-timeout' } });
  });

  it('stopAll stops the others after a failed stop, then throws the first error', async () => {
    const hr = runner([res('fs'), res('app', { after: ['fs'], stop: 'echo busy; exit 1' })]);
    await hr.startAll();
    const err = await hr.stopAll().catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'stop-failed', resource: 'app' });
    expect(await hr.statusAll()).toEqual([{ name: 'fs', running: false }, { name: 'app', running: true }]);
    expect(types().slice(-3)).toEqual(['automation.resource-stop-failed app', 'automation.resource-stopping fs', 'automation.resource-stopped fs']);
  });
});

describe('runCommand', () => {
  it('sees the exit of commands that end at once (none is lost while the log is being closed)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sanbox-command-'));
    try {
      const runs = Array.from({ length: 100 }, (_, i) => runCommand(`exit ${i % 3}`, { timeoutMs: 30_000, logFile: join(dir, `${i}.log`) }));
      expect((await Promise.all(runs)).map((r) => r.exitCode)).toEqual(Array.from({ length: 100 }, (_, i) => i % 3));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 5000);

  it('returns only the last 2 KiB this run appended to the log', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sanbox-command-'));
    try {
      const logFile = join(dir, 'x.log');
      await runCommand('echo earlier', { timeoutMs: 2000, logFile });
      const r = await runCommand('head -c 5000 /dev/zero | tr "\\0" a; echo; echo last', { timeoutMs: 2000, logFile });
      expect(r).toMatchObject({ exitCode: 0, signal: null, timedOut: false });
      expect(r.output.length).toBe(2048);
      expect(r.output.endsWith('a\nlast\n')).toBe(true);
      expect((await runCommand('exit 0', { timeoutMs: 2000, logFile })).output).toBe('');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
