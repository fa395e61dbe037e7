#!/usr/bin/env node
// Structure check of src/ (runs in CI, plain Node, no dependencies):
// - every import circle among src/'s files, through relative imports of any kind (`import`,
//   `import type`, `export ... from`, side-effect `import './x.js'`, `import()` and `require()`):
//   imports point down the stack, so a circle of type-only imports is a circle too;
// - files over 600 lines in src/replication and src/array (the limit of issue 10), and, as
//   warnings only, any other file of src/ over 500 lines (the house's "about 500").
// Exit status: 0 clean, 1 a circle, an oversized file or an unresolved relative import, 2 usage.
//
//   node scripts/check-structure.mjs [--root DIR]    (DIR holds src/; default: this repository)
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const LIMIT_LINES = 600;
const LIMIT_DIRS = ['src/replication', 'src/array'];
const WARN_LINES = 500;
const SOURCE = /\.(ts|mts|cts|tsx|js|mjs|cjs)$/;
const MAX_CYCLES_PER_KNOT = 50;

/** Keywords after which a `/` starts a regular expression, not a division. */
const REGEX_AFTER = new Set(['return', 'typeof', 'instanceof', 'in', 'of', 'new', 'delete', 'void', 'throw', 'case', 'do', 'else', 'yield', 'await']);

/**
 * The string literals of a source file that name a module, with their line and whether the
 * statement is type-only. A small scanner (comments, strings, templates, regular expressions
 * skipped) rather than a regular expression over the text: a commented-out import is no import,
 * and an import-looking string in a template is no import either.
 */
export function moduleSpecifiers(text) {
  const found = [];
  const toks = []; // significant tokens so far: { t: 'id' | 'p' | 's', v, line }
  let line = 1;
  let i = 0;
  const n = text.length;
  const prev = (k) => toks[toks.length - k];
  const is = (tok, v) => tok !== undefined && tok.t !== 's' && tok.v === v;
  const regexAllowed = () => {
    const p = prev(1);
    if (!p) return true;
    if (p.t === 'id') return REGEX_AFTER.has(p.v);
    if (p.t === 's') return false;
    return !(p.v === ')' || p.v === ']' || p.v === '}');
  };
  /** The statement of a `from` string is type-only: `import type ...` / `export type ...`. */
  const typeOnlyStatement = () => {
    for (let k = toks.length - 2; k >= 0; k--) {
      const tk = toks[k];
      if (tk.t === 'p' && tk.v === ';') return false;
      if (tk.t === 'id' && (tk.v === 'import' || tk.v === 'export')) return is(toks[k + 1], 'type');
    }
    return false;
  };
  const onString = (value, at) => {
    const p1 = prev(1);
    const p2 = prev(2);
    let kind = null;
    let typeOnly = false;
    if (is(p1, 'from')) {
      kind = 'static';
      typeOnly = typeOnlyStatement();
    } else if (is(p1, 'import')) kind = 'static';
    else if (is(p1, '(') && is(p2, 'import')) {
      kind = 'dynamic';
      // `typeof import('./x.js')` or `import('./x.js').T` in a type position
      typeOnly = is(prev(3), 'typeof');
    } else if (is(p1, '(') && is(p2, 'require')) kind = 'require';
    if (kind) found.push({ specifier: value, line: at, kind, typeOnly });
    toks.push({ t: 's', v: value, line: at });
  };
  const readQuoted = (q) => {
    const at = line;
    let v = '';
    i++;
    while (i < n && text[i] !== q) {
      if (text[i] === '\\') {
        v += text[i + 1] ?? '';
        i += 2;
        continue;
      }
      if (text[i] === '\n') line++;
      v += text[i++];
    }
    i++;
    onString(v, at);
  };
  // Template literals: the text is skipped; `${ ... }` holes are scanned as code (nesting kept).
  const braces = []; // per open `{`: true when it opened a template hole
  const readTemplate = () => {
    i++;
    while (i < n) {
      const c = text[i];
      if (c === '\\') {
        i += 2;
        continue;
      }
      if (c === '\n') line++;
      if (c === '`') {
        i++;
        toks.push({ t: 's', v: '', line });
        return;
      }
      if (c === '$' && text[i + 1] === '{') {
        i += 2;
        braces.push(true);
        toks.push({ t: 'p', v: '(', line });
        return;
      }
      i++;
    }
  };
  while (i < n) {
    const c = text[i];
    if (c === '\n') {
      line++;
      i++;
    } else if (c === ' ' || c === '\t' || c === '\r') i++;
    else if (c === '/' && text[i + 1] === '/') {
      while (i < n && text[i] !== '\n') i++;
    } else if (c === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      const stop = end < 0 ? n : end + 2;
      for (let k = i; k < stop; k++) if (text[k] === '\n') line++;
      i = stop;
    } else if (c === "'" || c === '"') readQuoted(c);
    else if (c === '`') readTemplate();
    else if (c === '}' && braces.length && braces[braces.length - 1]) {
      braces.pop();
      readTemplate(); // the rest of the template after its hole
    } else if (c === '/' && regexAllowed()) {
      i++;
      let inClass = false;
      while (i < n && text[i] !== '\n') {
        const d = text[i];
        if (d === '\\') i += 2;
        else {
          i++;
          if (d === '[') inClass = true;
          else if (d === ']') inClass = false;
          else if (d === '/' && !inClass) break;
        }
      }
      while (i < n && /[a-z]/i.test(text[i])) i++;
      toks.push({ t: 's', v: '', line });
    } else if (/[A-Za-z_$]/.test(c)) {
      let j = i + 1;
      while (j < n && /[\w$]/.test(text[j])) j++;
      toks.push({ t: 'id', v: text.slice(i, j), line });
      i = j;
    } else if (/[0-9]/.test(c)) {
      let j = i + 1;
      while (j < n && /[\w.]/.test(text[j])) j++;
      toks.push({ t: 'id', v: text.slice(i, j), line });
      i = j;
    } else {
      if (c === '{') braces.push(false);
      else if (c === '}') braces.pop();
      toks.push({ t: 'p', v: c, line });
      i++;
    }
  }
  return found;
}

/** The file a relative specifier names (`./x.js` may be `./x.ts`), or null. */
export function resolveSpecifier(fromFile, specifier) {
  const base = resolve(dirname(fromFile), specifier);
  const candidates = [base];
  const m = /\.(m|c)?js$/.exec(base);
  if (m) {
    const stem = base.slice(0, -m[0].length);
    candidates.push(`${stem}.${m[1] ?? ''}ts`, `${stem}.tsx`);
  } else if (!/\.[cm]?tsx?$/.test(base)) {
    for (const ext of ['.ts', '.tsx', '.mts', '.js', '.mjs']) candidates.push(base + ext);
    for (const ext of ['.ts', '.js']) candidates.push(join(base, `index${ext}`));
  }
  return candidates.find((f) => existsSync(f) && statSync(f).isFile()) ?? null;
}

function listSources(dir) {
  const out = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...listSources(p));
    else if (SOURCE.test(e.name) && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out.sort();
}

const lineCount = (text) => (text.length === 0 ? 0 : text.split('\n').length - (text.endsWith('\n') ? 1 : 0));

/**
 * The elementary cycles of one strongly connected component, each starting at its smallest node
 * (so each cycle is reported once), at most `max` of them.
 */
function cyclesOf(knot, edges, max) {
  const order = [...knot].sort();
  const rank = new Map(order.map((f, k) => [f, k]));
  const cycles = [];
  for (const start of order) {
    const path = [start];
    const onPath = new Set(path);
    const walk = (node) => {
      for (const next of edges.get(node) ?? []) {
        if (cycles.length >= max) return;
        if (!knot.has(next) || rank.get(next) < rank.get(start)) continue;
        if (next === start) cycles.push([...path, start]);
        else if (!onPath.has(next)) {
          path.push(next);
          onPath.add(next);
          walk(next);
          onPath.delete(next);
          path.pop();
        }
      }
    };
    walk(start);
  }
  return cycles;
}

/** Tarjan's strongly connected components with more than one file, or one importing itself. */
function knotsOf(nodes, edges) {
  let index = 0;
  const idx = new Map();
  const low = new Map();
  const stack = [];
  const onStack = new Set();
  const knots = [];
  const visit = (v) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    onStack.add(v);
    for (const w of edges.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)));
    }
    if (low.get(v) === idx.get(v)) {
      const knot = new Set();
      let w;
      do {
        w = stack.pop();
        onStack.delete(w);
        knot.add(w);
      } while (w !== v);
      if (knot.size > 1 || (edges.get(v) ?? new Set()).has(v)) knots.push(knot);
    }
  };
  for (const v of nodes) if (!idx.has(v)) visit(v);
  return knots;
}

/** Checks ROOT/src; returns { errors, warnings, stats } with paths relative to ROOT. */
export function checkStructure(root) {
  const srcDir = join(root, 'src');
  if (!existsSync(srcDir)) throw new Error(`no src/ under ${root}`);
  const rel = (f) => relative(root, f).split(sep).join('/');
  const files = listSources(srcDir);
  const edges = new Map(); // file -> Set(file)
  const how = new Map(); // "a\0b" -> the first import of b by a
  const errors = [];
  const warnings = [];
  let imports = 0;
  for (const f of files) {
    const text = readFileSync(f, 'utf8');
    edges.set(f, new Set());
    for (const s of moduleSpecifiers(text)) {
      if (!s.specifier.startsWith('./') && !s.specifier.startsWith('../')) continue;
      imports++;
      const target = resolveSpecifier(f, s.specifier);
      if (!target) {
        errors.push(`unresolved import: ${rel(f)}:${s.line} imports '${s.specifier}'`);
        continue;
      }
      if (!target.startsWith(srcDir + sep)) continue;
      edges.get(f).add(target);
      const key = `${f}\0${target}`;
      if (!how.has(key)) how.set(key, s);
    }
    const lines = lineCount(text);
    const limited = LIMIT_DIRS.some((d) => rel(f).startsWith(`${d}/`));
    if (limited && lines > LIMIT_LINES) errors.push(`file too large: ${rel(f)}: ${lines} lines (limit ${LIMIT_LINES} in ${LIMIT_DIRS.join(' and ')})`);
    else if (lines > WARN_LINES) warnings.push(`warning: ${rel(f)}: ${lines} lines (over ${WARN_LINES})`);
  }
  const circles = [];
  for (const knot of knotsOf(files, edges)) {
    const cycles = cyclesOf(knot, edges, MAX_CYCLES_PER_KNOT);
    const lines = [`import circle among ${knot.size} file${knot.size === 1 ? '' : 's'}: ${[...knot].map(rel).sort().join(', ')}`];
    for (const c of cycles) {
      lines.push(`  ${c.map(rel).join(' -> ')}`);
      for (let k = 0; k + 1 < c.length; k++) {
        const s = how.get(`${c[k]}\0${c[k + 1]}`);
        const tag = s.typeOnly ? ' (type-only)' : s.kind === 'static' ? '' : ` (${s.kind})`;
        lines.push(`    ${rel(c[k])}:${s.line} imports '${s.specifier}'${tag}`);
      }
    }
    if (cycles.length >= MAX_CYCLES_PER_KNOT) lines.push(`  ... (first ${MAX_CYCLES_PER_KNOT} cycles shown)`);
    circles.push(lines.join('\n'));
  }
  errors.unshift(...circles);
  return { errors, warnings, stats: { files: files.length, imports, circles: circles.length } };
}

function main(argv) {
  let root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
  for (let k = 0; k < argv.length; k++) {
    if (argv[k] === '--root' && argv[k + 1]) root = resolve(argv[++k]);
    else if (argv[k] === '--help' || argv[k] === '-h') {
      process.stdout.write('usage: node scripts/check-structure.mjs [--root DIR]\n');
      return 0;
    } else {
      process.stderr.write(`check-structure: unknown argument ${argv[k]}\nusage: node scripts/check-structure.mjs [--root DIR]\n`);
      return 2;
    }
  }
  const { errors, warnings, stats } = checkStructure(root);
  for (const w of warnings) process.stdout.write(`${w}\n`);
  for (const e of errors) process.stdout.write(`${e}\n`);
  const tooLarge = errors.filter((e) => e.startsWith('file too large')).length;
  const unresolved = errors.filter((e) => e.startsWith('unresolved')).length;
  const summary = `${stats.files} files, ${stats.imports} relative imports in src/: ${stats.circles} import circle(s), ${tooLarge} file(s) over ${LIMIT_LINES} lines in ${LIMIT_DIRS.join(' and ')}, ${unresolved} unresolved import(s), ${warnings.length} warning(s)`;
  process.stdout.write(`check-structure: ${errors.length ? 'FAILED' : 'ok'}: ${summary}\n`);
  return errors.length ? 1 : 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) process.exitCode = main(process.argv.slice(2));
