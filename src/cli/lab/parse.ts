/** Reading a lab file: YAML to a checked `Lab`, every problem reported at once. */
import { readFileSync } from 'node:fs';
import { basename, extname, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { checkName } from '../../array/index.js';
import { CliError, EXIT } from '../common.js';
import { parseArrays } from './arrays.js';
import { parseAutomation } from './automation.js';
import { parseGroups } from './groups.js';
import { parseLinks } from './links.js';
import { parseMirrors } from './mirrors.js';
import { parseMonitor } from './monitor.js';
import { parseDashboard } from './dashboard.js';
import { parseHeartbeat } from './heartbeat.js';
import { parseRestart, parseSites } from './sites.js';
import { isObj, LabError, type Lab, type Obj, type ParseContext } from './types.js';

/** Parses and validates a lab file; every problem is reported at once. */
export function loadLab(path: string): Lab {
  const file = resolve(path);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new CliError(EXIT.USAGE, 'invalid-lab', `cannot read lab file ${file}: ${(e as Error).message}`);
  }
  return parseLab(text, file);
}

export function parseLab(text: string, file: string): Lab {
  const problems: string[] = [];
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
  if (doc.errors.length) throw new LabError(file, doc.errors.map((e) => `YAML: ${e.message.split('\n')[0]}`));
  const root = doc.toJS() as unknown;
  if (!isObj(root)) throw new LabError(file, ['the lab file must be a mapping with an "arrays" list']);

  const known = (o: Obj, where: string, keys: string[]) => {
    for (const k of Object.keys(o)) if (!keys.includes(k)) problems.push(`${where}: unknown key "${k}" (expected ${keys.join(', ')})`);
  };
  known(root, 'top level', ['lab', 'arrays', 'links', 'mirrors', 'groups', 'sites', 'restart', 'monitor', 'dashboard', 'heartbeat', 'automation']);

  let name = basename(file, extname(file));
  if (root.lab !== undefined) {
    const bad = checkName(root.lab, 'lab name');
    if (bad) problems.push(bad);
    else name = root.lab as string;
  } else if (checkName(name, 'lab name')) {
    problems.push(`lab name from the file name ${JSON.stringify(name)} is invalid; give "lab:"`);
  }

  const ports = new Map<number, string>();
  const usePort = (port: number, what: string) => {
    if (port === 0) return;
    const prev = ports.get(port);
    if (prev) problems.push(`${what}: port ${port} is already used by ${prev}`);
    else ports.set(port, what);
  };
  const ctx: ParseContext = { file, problems, known, usePort };
  const arrays = parseArrays(root.arrays, ctx);
  const links = parseLinks(root.links, arrays, problems, usePort, file);
  const mirrors = parseMirrors(root.mirrors, arrays, links, root.links, problems);
  const groups = parseGroups(root.groups, mirrors, root.mirrors, problems);
  const sites = parseSites(root.sites, arrays, problems);
  const restart = parseRestart(root.restart, problems);
  const monitor = parseMonitor(root.monitor, { name, mirrors, groups, arrays: arrays.map((a) => a.name) }, problems);
  const dashboard = parseDashboard(root.dashboard, problems, usePort);
  const heartbeat = parseHeartbeat(root.heartbeat, { arrays, sites, mirrors, groups }, { problems, usePort });
  const automation = parseAutomation(root.automation, { arrays, sites, mirrors, groups }, { problems, usePort });
  if (problems.length) throw new LabError(file, problems);
  return { name, file, arrays, links, mirrors, groups, sites, restart, ...(monitor ? { monitor } : {}), dashboard, ...(heartbeat ? { heartbeat } : {}), ...(automation ? { automation } : {}) };
}

/** A lab reference: a lab name, or a path to a lab file (its name is read from the file). */
export function labNameOf(ref: string): string {
  if (/\.ya?ml$/i.test(ref) || ref.includes('/')) {
    try {
      return loadLab(ref).name;
    } catch {
      // An unreadable or invalid lab file still names its lab by convention (the file name).
      return basename(ref, extname(ref));
    }
  }
  return ref;
}
