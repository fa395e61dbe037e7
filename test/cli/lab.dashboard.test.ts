// `dashboard:` of a lab file (src/cli/lab/dashboard.ts): the default, off, and every problem.
import { describe, expect, it } from 'vitest';
import { LabError, parseLab } from '../../src/cli/lab.js';

const ARRAYS = 'arrays:\n  - { name: alpha, nbd: { port: 0 }, api: { port: 0 }, luns: [{ name: d0, size: 1M }] }\n';
const lab = (extra: string) => parseLab(`lab: t\n${ARRAYS}${extra}`, '/tmp/t.yaml');
const problems = (extra: string): string[] => {
  try {
    lab(extra);
  } catch (e) {
    if (e instanceof LabError) return e.message.split('\n').slice(1).map((l) => l.trim());
    throw e;
  }
  return [];
};

describe('lab file: dashboard', () => {
  it('defaults to loopback on any free port; takes bind, port, token; off turns it off', () => {
    expect(lab('').dashboard).toEqual({ bind: '127.0.0.1', port: 0 });
    expect(lab('dashboard: { port: 8480 }\n').dashboard).toEqual({ bind: '127.0.0.1', port: 8480 });
    expect(lab('dashboard: { bind: 0.0.0.0, port: 8480, token: secret-token-1 }\n').dashboard).toEqual({ bind: '0.0.0.0', port: 8480, token: 'secret-token-1' });
    expect(lab('dashboard: off\n').dashboard).toBe(false);
  });

  it('reports unknown keys, bad ports, short tokens, a non-loopback address without a token, a port used twice', () => {
    expect(problems('dashboard: { prot: 1 }\n').join('\n')).toMatch(/dashboard: unknown key "prot"/);
    expect(problems('dashboard: { port: 70000 }\n').join('\n')).toMatch(/dashboard.port must be a port 0-65535/);
    expect(problems('dashboard: { token: short }\n').join('\n')).toMatch(/dashboard.token must be a string of at least 8 characters/);
    expect(problems('dashboard: { bind: 0.0.0.0 }\n').join('\n')).toMatch(/dashboard: binding 0.0.0.0 \(not loopback\) needs a token/);
    expect(problems('dashboard: yes\n').join('\n')).toMatch(/"dashboard" must be a mapping/);
    const twice = parseLabProblems(`lab: t\narrays:\n  - { name: alpha, nbd: { port: 0 }, api: { port: 8480 }, luns: [{ name: d0, size: 1M }] }\ndashboard: { port: 8480 }\n`);
    expect(twice).toMatch(/dashboard: port 8480 is already used/);
  });
});

function parseLabProblems(text: string): string {
  try {
    parseLab(text, '/tmp/t.yaml');
    return '';
  } catch (e) {
    return (e as Error).message;
  }
}
