// The progress of a scenario run (src/scenario/runner/progress.ts) on a stand-in stream: a
// terminal gets the step lines above a bar of the actions done (with the live status after it)
// and a final line; a log gets the step lines and progress sentences; no stream gets nothing;
// more actions than planned is a bug it reports.
import { describe, expect, it } from 'vitest';
import { Progress } from '../../../src/scenario/runner/progress.js';

function stream(isTTY: boolean) {
  const writes: string[] = [];
  const out = { isTTY, columns: 200, write: (t: string) => (writes.push(t), true) } as unknown as NodeJS.WriteStream;
  return { out, writes, text: () => writes.join('') };
}

/** A run that started at the time of the call (read once, as the runner does). */
function startedNow(): () => number {
  const startedAtMs = Date.now();
  return () => startedAtMs;
}

describe('scenario progress', () => {
  it('a terminal: step lines above the bar of actions, redrawn; the final line ends it', () => {
    const s = stream(true);
    const p = new Progress(startedNow(), s.out);
    p.line('scenario x, seed 1: starting lab');
    p.plan('scenario x', 4);
    expect(s.writes.at(-1)).toMatch(/^\r\x1b\[Kscenario x \[\.+\] 0% 0\/4 actions \?\/s ETA \?$/);
    p.line('step 0: link-cut link=alpha-bravo');
    expect(s.writes.at(-1)).toMatch(/^\r\x1b\[K\[ +\d+\.\d s\] step 0: link-cut link=alpha-bravo\nscenario x \[/);
    p.advance();
    p.advance();
    p.end('failed');
    expect(s.writes.at(-1)).toMatch(/^\r\x1b\[Kscenario x \[#+\.+\] 50% 2\/4 actions .* failed in [\d.]+s\n$/);
    p.line('stopping lab');
    expect(s.writes.at(-1)).toMatch(/^\[ +\d+\.\d s\] stopping lab\n$/); // after the end: a line of its own
  });

  it('a log: the step lines and progress sentences, no control characters', () => {
    const s = stream(false);
    const p = new Progress(startedNow(), s.out);
    p.plan('scenario x', 2);
    p.line('step 0: sleep ms=10');
    p.advance();
    p.advance();
    p.end('done');
    const lines = s.text().trimEnd().split('\n');
    expect(lines[0]).toBe('scenario x: 0 of 2 actions (0%) after 0s, ?/s, ETA ?');
    expect(lines[1]).toMatch(/^\[ +\d+\.\d s\] step 0: sleep ms=10$/);
    expect(lines.at(-1)).toMatch(/^scenario x: done, 2 of 2 actions \(100%\) in [\d.]+s/);
    expect(s.text()).not.toMatch(/[\r\x1b]/);
  });

  it('a start read a millisecond after the line is 0.0 s, never -0.0 s', () => {
    const s = stream(false);
    const p = new Progress(() => Date.now() + 1, s.out);
    p.line('step 0: sleep ms=10');
    expect(s.text()).toBe('[   0.0 s] step 0: sleep ms=10\n');
  });

  it('no stream: nothing; more actions than planned: an error', () => {
    const quiet = new Progress(() => Date.now(), null);
    quiet.plan('scenario x', 1);
    quiet.line('x');
    quiet.advance();
    quiet.end();
    const s = stream(false);
    const p = new Progress(startedNow(), s.out);
    p.plan('scenario x', 1);
    p.advance();
    expect(() => p.advance()).toThrow(/action 2 finished, but 1 were planned/);
  });
});
