/**
 * The controller's persisted state: the leases it knows and the step logs of its operations. The
 * whole document is rewritten (temporary file, fsync, rename) before and after every step, so a
 * controller killed at any moment finds the last step it began and resumes there.
 */
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { emptyLease, type Lease } from '../rg/lease.js';
import type { Operation } from '../rg/operation.js';

/** Finished operations kept for `rg status` and the API. */
const KEEP_FINISHED = 50;

export interface ControllerDoc {
  version: 1;
  site: string;
  leases: Record<string, Lease>;
  operations: Operation[];
}

export class ControllerStore {
  private doc: ControllerDoc;

  constructor(
    private readonly path: string,
    site: string,
    groups: string[],
  ) {
    this.doc = existsSync(path) ? load(path, site) : { version: 1, site, leases: {}, operations: [] };
    for (const g of groups) this.doc.leases[g] ??= emptyLease(g);
  }

  lease(rg: string): Lease {
    const l = this.doc.leases[rg];
    if (!l) throw new Error(`no resource group ${rg} in the controller's state`);
    return l;
  }

  leases(): Lease[] {
    return Object.values(this.doc.leases);
  }

  setLease(l: Lease): void {
    this.doc.leases[l.rg] = l;
    this.save();
  }

  operations(): Operation[] {
    return this.doc.operations;
  }

  running(): Operation[] {
    return this.doc.operations.filter((o) => o.status === 'running');
  }

  putOperation(op: Operation): void {
    const i = this.doc.operations.findIndex((o) => o.id === op.id);
    if (i >= 0) this.doc.operations[i] = op;
    else this.doc.operations.push(op);
    const finished = this.doc.operations.filter((o) => o.status !== 'running');
    if (finished.length > KEEP_FINISHED) {
      const drop = new Set(finished.slice(0, finished.length - KEEP_FINISHED).map((o) => o.id));
      this.doc.operations = this.doc.operations.filter((o) => !drop.has(o.id));
    }
    this.save();
  }

  private save(): void {
    const tmp = `${this.path}.tmp`;
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, JSON.stringify(this.doc, null, 1) + '\n');
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.path);
  }
}

function load(path: string, site: string): ControllerDoc {
  const doc = JSON.parse(readFileSync(path, 'utf8')) as ControllerDoc;
  if (doc.version !== 1 || doc.site !== site || typeof doc.leases !== 'object' || !Array.isArray(doc.operations)) throw new Error(`${path} is not the state of the controller of site ${site}`);
  return doc;
}
