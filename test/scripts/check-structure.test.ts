// scripts/check-structure.mjs on small temporary trees: an import circle is found (also through
// type-only imports, `export ... from` and `import()`), a clean tree passes, comments and strings
// are no imports, and the file-size limits of src/replication and src/array hold.
import { describe, it, expect, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { REPO } from '../support/paths.js';

const SCRIPT = join(REPO, 'scripts', 'check-structure.mjs');
const roots: string[] = [];
afterAll(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

/** A tree of files (paths relative to the root) checked by the script. */
function check(files: Record<string, string>): { code: number | null; out: string } {
  const root = mkdtempSync(join(tmpdir(), 'sanbox-structure-'));
  roots.push(root);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  const r = spawnSync(process.execPath, [SCRIPT, '--root', root], { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, out: r.stdout + r.stderr };
}

const lines = (n: number) => Array.from({ length: n }, (_, i) => `export const x${i} = ${i};`).join('\n') + '\n';

describe('check-structure: import circles', () => {
  it('a clean tree passes (imports pointing down, index.ts, extensionless and .js specifiers)', () => {
    const r = check({
      'src/index.ts': "export * from './top.js';\n",
      'src/top.ts': "import { low } from './lib/index.js';\nimport { mid } from './mid';\nexport const top = low + mid;\n",
      'src/mid.ts': "import { low } from './lib';\nexport const mid = low;\n",
      'src/lib/index.ts': "export { low } from './low.js';\n",
      'src/lib/low.ts': "import { join } from 'node:path';\nexport const low = join('a').length;\n",
    });
    expect(r.out).toMatch(/check-structure: ok: 5 files, 5 relative imports/);
    expect(r.code).toBe(0);
  });

  it('a circle is found, with every import on it', () => {
    const r = check({
      'src/a.ts': "import { b } from './b.js';\nexport const a = () => b();\n",
      'src/b.ts': "import { c } from './deep/c.js';\nexport const b = () => c();\n",
      'src/deep/c.ts': "import { a } from '../a.js';\nexport const c = () => a();\n",
    });
    expect(r.code).toBe(1);
    expect(r.out).toContain('import circle among 3 files: src/a.ts, src/b.ts, src/deep/c.ts');
    expect(r.out).toContain('src/a.ts -> src/b.ts -> src/deep/c.ts -> src/a.ts');
    expect(r.out).toContain("src/deep/c.ts:1 imports '../a.js'");
    expect(r.out).toMatch(/FAILED: .* 1 import circle\(s\)/);
  });

  it('a type-only import counts', () => {
    const r = check({
      'src/layer.ts': "import type { Node } from './node.js';\nexport class Layer { constructor(readonly node: Node) {} }\n",
      'src/node.ts': "import { Layer } from './layer.js';\nexport class Node { layer = new Layer(this); }\n",
    });
    expect(r.code).toBe(1);
    expect(r.out).toContain('src/layer.ts -> src/node.ts -> src/layer.ts');
    expect(r.out).toContain("src/layer.ts:1 imports './node.js' (type-only)");
  });

  it('inline type imports, export-from, import() and typeof import() count too', () => {
    for (const [first, tag] of [
      ["import { type B } from './b.js';\nexport type A = B;\n", ''],
      ["export { b } from './b.js';\n", ''],
      ["export async function a() { return (await import('./b.js')).b; }\n", ' (dynamic)'],
      ["export type A = typeof import('./b.js');\n", ' (type-only)'],
    ]) {
      const r = check({ 'src/a.ts': first!, 'src/b.ts': "import './a.js';\nexport const b = 1;\n" });
      expect(r.code, first).toBe(1);
      expect(r.out).toContain(`src/a.ts:1 imports './b.js'${tag}`);
    }
  });

  it('imports in comments, strings and templates are no imports', () => {
    const r = check({
      'src/a.ts': [
        "// import { b } from './b.js';",
        "/* import './b.js'; */",
        "export const s = \"import './b.js'\";",
        "export const t = `${1} from './b.js' ${`import('./b.js')`}`;",
        "export const re = /from '.\\/b.js'/;",
        "import { ok } from './ok.js';",
        'export const y = ok;',
      ].join('\n'),
      'src/b.ts': "import { s } from './a.js';\nexport const b = s;\n",
      'src/ok.ts': 'export const ok = 1;\n',
    });
    expect(r.out).toMatch(/check-structure: ok: 3 files, 2 relative imports/);
    expect(r.code).toBe(0);
  });

  it('an unresolved relative import fails', () => {
    const r = check({ 'src/a.ts': "import { gone } from './gone.js';\nexport const a = gone;\n" });
    expect(r.code).toBe(1);
    expect(r.out).toContain("unresolved import: src/a.ts:1 imports './gone.js'");
  });
});

describe('check-structure: file sizes', () => {
  it('files over 600 lines in src/replication and src/array fail; 600 lines pass', () => {
    const r = check({
      'src/replication/mirror/node.ts': lines(601),
      'src/array/chassis/chassis.ts': lines(700),
      'src/array/ok.ts': lines(600),
    });
    expect(r.code).toBe(1);
    expect(r.out).toContain('file too large: src/replication/mirror/node.ts: 601 lines');
    expect(r.out).toContain('file too large: src/array/chassis/chassis.ts: 700 lines');
    expect(r.out).not.toContain('file too large: src/array/ok.ts');
    expect(r.out).toContain('warning: src/array/ok.ts: 600 lines (over 500)');
  });

  it('other files over 500 lines are warnings only', () => {
    const r = check({ 'src/cli/lab.ts': lines(1200), 'src/nbd/session.ts': lines(500) });
    expect(r.out).toContain('warning: src/cli/lab.ts: 1200 lines (over 500)');
    expect(r.out).not.toContain('src/nbd/session.ts');
    expect(r.code).toBe(0);
  });
});

describe('check-structure: this repository', () => {
  // Not an assertion that src/ is clean (issue 10 is under way): the script must run on the real
  // tree, resolve every relative import of it, and say what it found.
  it('runs on src/ and resolves every relative import', () => {
    const r = spawnSync(process.execPath, [SCRIPT], { encoding: 'utf8', timeout: 30_000 });
    expect(r.stdout).toMatch(/check-structure: (ok|FAILED): \d+ files, \d+ relative imports in src\/: .* 0 unresolved import\(s\)/);
    expect([0, 1]).toContain(r.status);
  });
});
