import { describe, expect, it } from 'vitest';
import { SerialQueue } from '../../src/serial/index.js';

describe('SerialQueue', () => {
  it('runs tasks one at a time in call order; each caller gets its own result or error', async () => {
    const q = new SerialQueue();
    const log: string[] = [];
    const task = (name: string, fail = false) => async () => {
      log.push(`start ${name}`);
      await new Promise((r) => setTimeout(r, 5));
      log.push(`end ${name}`);
      if (fail) throw new Error(`${name} failed`);
      return name;
    };
    const a = q.run(task('a'));
    const b = q.run(task('b', true));
    const c = q.run(task('c'));
    await expect(a).resolves.toBe('a');
    await expect(b).rejects.toThrow('b failed');
    await expect(c).resolves.toBe('c');
    expect(log).toEqual(['start a', 'end a', 'start b', 'end b', 'start c', 'end c']);
    await expect(q.drained()).resolves.toBeUndefined();
  });

  it('drained waits for what was queued before it', async () => {
    const q = new SerialQueue();
    let done = false;
    void q.run(async () => {
      await new Promise((r) => setTimeout(r, 5));
      done = true;
    });
    await q.drained();
    expect(done).toBe(true);
  });
});
