/**
 * Finds every event type the source emits, by reading `src/**\/*.ts` with the TypeScript parser
 * (so the check survives files being split or moved):
 * - any call (but an RPC's `call('mirror.pages', ...)`) whose first argument is a string literal
 *   (or a conditional between literals) `family.name` that is not a file name:
 *   `publish('sp.crashed')`, `note('lun.offline')` (so a new family is caught too);
 * - a dotless literal as first argument of `publish`, `record`, `emitEvent` or `event`
 *   (`this.event('resync-started')`) takes the family of the file's own `event` helper
 *   (`event(type) { ...(`mirror.${type}`) }`), else of its folder (`replication/group/` or
 *   `groups*.ts`: group; `replication/mirror/`: mirror);
 * - event objects that a forwarder prefixes (`cache.${e.type}`, the mirror record's
 *   `MirrorDbEvent`s published as `mirror.${type}`, a group op's `GroupEvent`s as
 *   `group.${type}`): every `type` member of such a union, and every `{ type: '...' }` literal
 *   returned by a function declared to return that type.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import ts from 'typescript';

const EMITTERS = new Set(['publish', 'record', 'emitEvent', 'event']);
/** Calls whose first argument names something else than an event (CMI and IPC operations). */
const NOT_EMITTERS = new Set(['call']);
/** A `name.ext` first argument that is a file name, not an event (`readFile('state.json')`). */
const FILE_NAME = /\.(json|jsonl|yaml|yml|sock|img|log|tmp|txt|lock|bitmap|corrupt|[cm]?[jt]s|md|node)$/;

/** Object unions forwarded with a prefix: union name -> [prefix, members not forwarded (and why)]. */
const FORWARDED_UNIONS: Record<string, { prefix: string; skip: string[] }> = {
  // sp-process/sp.ts: onEvent -> `cache.${e.type}`, except 'mode' (reported per SP as sp.cache-mode)
  CacheEvent: { prefix: 'cache.', skip: ['mode'] },
  // the mirror driver publishes every applyOp event as `mirror.${type}`
  MirrorDbEvent: { prefix: 'mirror.', skip: [] },
  // consistency-group ops' events, published as `group.${type}`
  GroupEvent: { prefix: 'group.', skip: [] },
};

export interface Emission {
  type: string;
  file: string;
  line: number;
}

export interface ScanResult {
  emissions: Emission[];
  /** Literals whose family could not be told: the scanner needs a rule for them. */
  unresolved: Emission[];
}

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...tsFiles(p));
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

function calleeName(call: ts.CallExpression): string | undefined {
  const c = call.expression;
  if (ts.isIdentifier(c)) return c.text;
  if (ts.isPropertyAccessExpression(c)) return c.name.text;
  return undefined;
}

/** The string literals an argument can evaluate to; template heads as `prefix*`. */
function literalsOf(e: ts.Expression): string[] {
  if (ts.isStringLiteral(e) || ts.isNoSubstitutionTemplateLiteral(e)) return [e.text];
  if (ts.isParenthesizedExpression(e)) return literalsOf(e.expression);
  if (ts.isConditionalExpression(e)) return [...literalsOf(e.whenTrue), ...literalsOf(e.whenFalse)];
  if (ts.isTemplateExpression(e)) return [`${e.head.text}*`];
  return [];
}

/** The prefix of the file's own `event(type)` helper, e.g. 'mirror.' for `mirror.${type}`. */
function helperPrefix(sf: ts.SourceFile): string | undefined {
  let prefix: string | undefined;
  const visit = (n: ts.Node, inHelper: boolean): void => {
    const helper = inHelper || ((ts.isMethodDeclaration(n) || ts.isFunctionDeclaration(n)) && n.name !== undefined && ts.isIdentifier(n.name) && n.name.text === 'event');
    if (helper && ts.isCallExpression(n) && n.arguments[0] && ts.isTemplateExpression(n.arguments[0])) {
      const head = n.arguments[0].head.text;
      if (/^[a-z]+\.$/.test(head)) prefix = head;
    }
    ts.forEachChild(n, (c) => visit(c, helper));
  };
  visit(sf, false);
  return prefix;
}

function folderPrefix(rel: string): string | undefined {
  const parts = rel.split(sep);
  const base = parts[parts.length - 1]!;
  if (parts.includes('replication') && (parts.includes('group') || base.startsWith('group'))) return 'group.';
  if (parts.includes('replication') && parts.includes('mirror')) return 'mirror.';
  return undefined;
}

/** `type` literals of the members of union type aliases named in FORWARDED_UNIONS. */
function unionTypes(sf: ts.SourceFile, rel: string, out: Emission[]): void {
  const visit = (n: ts.Node): void => {
    if (ts.isTypeAliasDeclaration(n) && FORWARDED_UNIONS[n.name.text]) {
      const { prefix, skip } = FORWARDED_UNIONS[n.name.text]!;
      const members = ts.isUnionTypeNode(n.type) ? n.type.types : [n.type];
      for (const m of members) {
        if (!ts.isTypeLiteralNode(m)) continue;
        for (const p of m.members) {
          if (!ts.isPropertySignature(p) || !p.type || p.name.getText(sf) !== 'type') continue;
          if (ts.isLiteralTypeNode(p.type) && ts.isStringLiteral(p.type.literal) && !skip.includes(p.type.literal.text)) {
            out.push({ type: prefix + p.type.literal.text, file: rel, line: sf.getLineAndCharacterOfPosition(p.getStart(sf)).line + 1 });
          }
        }
      }
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
}

/** The forwarded type a function is declared to return (`GroupEvent[]`, `MirrorDbEvent`), if any. */
function declaredEventType(fn: ts.SignatureDeclaration, sf: ts.SourceFile): string | undefined {
  const text = fn.type?.getText(sf);
  if (!text) return undefined;
  return Object.keys(FORWARDED_UNIONS).find((u) => new RegExp(`\\b${u}\\b`).test(text));
}

/** `{ type: 'x', ... }` literals inside functions declared to return a forwarded event type. */
function returnedEvents(sf: ts.SourceFile, rel: string, out: Emission[]): void {
  const visit = (n: ts.Node, union: string | undefined): void => {
    let u = union;
    if (ts.isFunctionLike(n)) u = declaredEventType(n, sf);
    if (u && ts.isObjectLiteralExpression(n)) {
      for (const p of n.properties) {
        if (!ts.isPropertyAssignment(p) || p.name.getText(sf) !== 'type' || !ts.isStringLiteral(p.initializer)) continue;
        const { prefix, skip } = FORWARDED_UNIONS[u]!;
        if (!skip.includes(p.initializer.text)) out.push({ type: prefix + p.initializer.text, file: rel, line: sf.getLineAndCharacterOfPosition(p.getStart(sf)).line + 1 });
      }
    }
    ts.forEachChild(n, (c) => visit(c, u));
  };
  visit(sf, undefined);
}

export function scanEmittedEvents(root: string): ScanResult {
  const emissions: Emission[] = [];
  const unresolved: Emission[] = [];
  for (const file of tsFiles(join(root, 'src'))) {
    const rel = relative(root, file);
    const sf = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true);
    const prefix = helperPrefix(sf) ?? folderPrefix(relative(join(root, 'src'), file));
    unionTypes(sf, rel, emissions);
    returnedEvents(sf, rel, emissions);
    const visit = (n: ts.Node): void => {
      const callee = ts.isCallExpression(n) ? (calleeName(n) ?? '') : '';
      if (ts.isCallExpression(n) && n.arguments[0] && !NOT_EMITTERS.has(callee)) {
        const line = sf.getLineAndCharacterOfPosition(n.getStart(sf)).line + 1;
        for (const lit of literalsOf(n.arguments[0])) {
          if (lit.endsWith('*')) continue; // a forwarder (`mirror.${type}`, `cache.${e.type}`): see FORWARDED_UNIONS
          const dotted = /^([a-z]+)\.[a-z][a-z-]*$/.exec(lit);
          if (dotted) {
            if (!FILE_NAME.test(lit)) emissions.push({ type: lit, file: rel, line });
          } else if (EMITTERS.has(callee) && /^[a-z][a-z-]*$/.test(lit)) {
            if (prefix) emissions.push({ type: prefix + lit, file: rel, line });
            else unresolved.push({ type: lit, file: rel, line });
          }
        }
      }
      ts.forEachChild(n, visit);
    };
    visit(sf);
  }
  return { emissions, unresolved };
}
