// `sanbox clone create|status|set|resume|delete` in process against a real array's API: text and
// --json output, and the stable exit codes (0 ok, 1 refused by the array, 2 usage, 3 unreachable).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RunningArray } from '../../src/control/service.js';
import { captureCli } from '../support/cli.js';
import { freePort } from '../support/net.js';
import { hostDevice, MiB, startCloneArray, tempRoot } from './helpers.js';

let root: ReturnType<typeof tempRoot>;
let run: RunningArray;
let target: string[];

beforeEach(async () => {
  root = tempRoot('sanbox-clone-cli-');
  ({ run } = await startCloneArray(root.path, [{ name: 'disk0', size: 4 * MiB }]));
  await hostDevice(run, 'disk0').write(0, Buffer.alloc(4 * MiB, 0x21));
  target = ['--api', run.apiUrl!];
});
afterEach(async () => {
  await run?.close(200);
  root.cleanup();
});

const cli = (...args: string[]) => captureCli([...args, ...target], { SANBOX_API: undefined, SANBOX_LAB: undefined });

describe('sanbox clone', () => {
  it('create --wait, status, delete: text and --json', async () => {
    const made = await cli('clone', 'create', 'disk0', 'c1', '--rate', '64M', '--wait', '--json');
    expect(made.code, made.err).toBe(0);
    expect(made.json.clone).toMatchObject({ name: 'c1', state: 'completed', percent: 100, source: { export: 'disk0@clone-c1', internal: true } });
    const st = await cli('clone', 'status');
    expect(st.code).toBe(0);
    expect(st.out).toMatch(/^NAME\s+LUN\s+SOURCE\s+STATE\s+COPIED\s+RATE\s+ETA/);
    expect(st.out).toMatch(/c1\s+1\s+disk0@clone-c1 \(internal\)\s+completed\s+4 MiB of 4 MiB \(100%\)\s+-\s+done in/);
    const one = await cli('clone', 'status', 'c1', '--json');
    expect(one.json.clone.name).toBe('c1');
    const del = await cli('clone', 'delete', 'c1');
    expect(del.code).toBe(0);
    expect(del.out).toBe('deleted clone c1 and its LUN\n');
    expect(run.array.getLunByName('c1')).toBeUndefined();
    expect((await cli('clone', 'list')).out).toMatch(/^no clones/);
  });

  it('a clone under way: text create, set --rate, refusals with exit 1, --keep-lun refused while copying', async () => {
    const made = await cli('clone', 'create', 'disk0', 'c2', '--rate', '64K');
    expect(made.code, made.err).toBe(0);
    expect(made.out).toMatch(/^created clone c2 \(LUN 1\) of disk0@clone-c2: usable now, copying 4 MiB at 64 KiB\/s/);
    const st = await cli('clone', 'status', 'c2', '--json');
    expect(st.json.clone).toMatchObject({ state: 'copying', rateBytesPerSec: 64 * 1024 });
    const keep = await cli('clone', 'delete', 'c2', '--keep-lun', '--json');
    expect(keep.code).toBe(1);
    expect(keep.json.error).toMatchObject({ code: 'busy', exitCode: 1, message: expect.stringMatching(/no usable LUN/) });
    const lunDel = await cli('lun', 'delete', 'disk0');
    expect(lunDel.code).toBe(1);
    expect(lunDel.err).toMatch(/LUN disk0 cannot be deleted: it is the source of clone c2/);
    const set = await cli('clone', 'set', 'c2', '--rate', '1G');
    expect(set.code).toBe(0);
    expect(set.out).toBe('clone c2 copies at 1 GiB/s\n');
  });

  it('usage errors exit 2 and send nothing; unknown names exit 1; no array exits 3', async () => {
    for (const args of [
      ['clone', 'create', 'disk0', 'c3', '--rate', 'fast'],
      ['clone', 'create', 'disk0', 'c3', '--rate', '0'],
      ['clone', 'set', 'c3'],
      ['clone', 'create', 'disk0'],
      ['clone', 'status', '--count', '2'],
    ]) {
      const r = await cli(...args);
      expect(r.code, `${args.join(' ')}: ${r.err}`).toBe(2);
    }
    expect((await cli('clone', 'status', '--json')).json.clones).toEqual([]);
    const unknown = await cli('clone', 'create', 'nope', 'c3');
    expect(unknown.code).toBe(1);
    expect(unknown.err).toBe('sanbox: no LUN "nope" to clone\n');
    expect((await cli('clone', 'delete', 'nope')).code).toBe(1);
    const port = await freePort();
    const down = await captureCli(['clone', 'status', '--api', `http://127.0.0.1:${port}`]);
    expect(down.code).toBe(3);
  });
});
