import { EventEmitter } from 'node:events';

export type SpName = 'A' | 'B';
export const SP_NAMES: readonly SpName[] = ['A', 'B'];

export function peerOf(sp: SpName): SpName {
  return sp === 'A' ? 'B' : 'A';
}

export type OwnershipReason = 'assign' | 'trespass' | 'takeover' | 'failback' | 'orphaned' | 'remove';

/** One ownership change. `from`/`to` null: no owner (both SPs down, or LUN added/removed). */
export interface OwnershipEvent {
  lun: number;
  from: SpName | null;
  to: SpName | null;
  reason: OwnershipReason;
}

export interface LunOwnership {
  lun: number;
  defaultOwner: SpName;
  currentOwner: SpName | null;
}

export type FailbackPolicy = 'automatic' | 'manual';

export class OwnershipError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OwnershipError';
  }
}

/**
 * LUN ownership of one array. Each LUN has a default owner and a current owner (an SP that is
 * up, or none when no SP is up). Every change is checked against the invariant "at most one
 * owner per LUN" (the per-LUN record and each SP's owned set must agree, no LUN in both sets,
 * every owner up), emitted as 'change' (OwnershipEvent) and returned as a list.
 */
export class OwnershipTable extends EventEmitter {
  private readonly luns = new Map<number, { defaultOwner: SpName; currentOwner: SpName | null }>();
  private readonly owned: Record<SpName, Set<number>> = { A: new Set(), B: new Set() };
  private readonly up: Record<SpName, boolean> = { A: false, B: false };

  constructor(spsUp: readonly SpName[] = ['A', 'B']) {
    super();
    for (const sp of spsUp) this.up[checkSp(sp)] = true;
  }

  isUp(sp: SpName): boolean {
    return this.up[checkSp(sp)];
  }

  owner(lun: number): SpName | null {
    return this.get(lun).currentOwner;
  }

  defaultOwner(lun: number): SpName {
    return this.get(lun).defaultOwner;
  }

  lunsOwnedBy(sp: SpName): number[] {
    return [...this.owned[checkSp(sp)]].sort((a, b) => a - b);
  }

  snapshot(): LunOwnership[] {
    return [...this.luns.entries()].sort(([a], [b]) => a - b).map(([lun, r]) => ({ lun, ...r }));
  }

  /** Adds a LUN, owned by its default owner if that SP is up, else by the peer if up. */
  addLun(lun: number, defaultOwner: SpName): OwnershipEvent[] {
    if (!Number.isSafeInteger(lun) || lun < 0) throw new OwnershipError(`bad LUN id ${lun}`);
    checkSp(defaultOwner);
    if (this.luns.has(lun)) throw new OwnershipError(`LUN ${lun} already exists`);
    this.luns.set(lun, { defaultOwner, currentOwner: null });
    const to = this.up[defaultOwner] ? defaultOwner : this.up[peerOf(defaultOwner)] ? peerOf(defaultOwner) : null;
    return this.commit([this.move(lun, to, 'assign')]);
  }

  removeLun(lun: number): OwnershipEvent[] {
    const ev = this.move(lun, null, 'remove');
    this.luns.delete(lun);
    return this.commit([ev]);
  }

  /** Moves one LUN to `to` (explicit trespass). No-op if `to` already owns it. */
  trespass(lun: number, to: SpName): OwnershipEvent[] {
    checkSp(to);
    const rec = this.get(lun);
    if (!this.up[to]) throw new OwnershipError(`cannot trespass LUN ${lun} to SP ${to}: SP ${to} is not up`);
    if (rec.currentOwner === to) return [];
    return this.commit([this.move(lun, to, 'trespass')]);
  }

  /**
   * `deadSp` is gone: marks it down and moves every LUN it owned to its peer (if the peer is
   * up; otherwise the LUNs have no owner).
   */
  takeOver(deadSp: SpName): OwnershipEvent[] {
    checkSp(deadSp);
    this.up[deadSp] = false;
    const peer = peerOf(deadSp);
    const events = this.lunsOwnedBy(deadSp).map((lun) => this.move(lun, this.up[peer] ? peer : null, this.up[peer] ? 'takeover' : 'orphaned'));
    return this.commit(events);
  }

  /**
   * `sp` is up again (after it dropped its stale cache). It owns nothing yet, except LUNs that
   * had no owner at all, which it takes.
   */
  spUp(sp: SpName): OwnershipEvent[] {
    checkSp(sp);
    this.up[sp] = true;
    const events: OwnershipEvent[] = [];
    for (const [lun, r] of this.luns) if (r.currentOwner === null) events.push(this.move(lun, sp, 'assign'));
    return this.commit(events);
  }

  /**
   * Returns LUNs to their default owners. 'automatic': every LUN whose default owner is up and
   * does not own it moves back now. 'manual': nothing moves; the returned list is empty and
   * `failbackPending()` lists what an administrator may trespass back.
   */
  failback(policy: FailbackPolicy): OwnershipEvent[] {
    if (policy === 'manual') return [];
    if (policy !== 'automatic') throw new OwnershipError(`unknown failback policy ${String(policy)}`);
    const events: OwnershipEvent[] = [];
    for (const lun of this.failbackPending()) events.push(this.move(lun, this.get(lun).defaultOwner, 'failback'));
    return this.commit(events);
  }

  /**
   * Returns one failback-pending LUN to its default owner. The chassis moves LUNs back one at a
   * time (quiesce and destage on the old owner, then the new owner's cache), so each LUN's
   * ownership must change just before its own move, not all of them at the first.
   */
  failbackLun(lun: number): OwnershipEvent[] {
    const rec = this.get(lun);
    if (!this.failbackPending().includes(lun)) {
      throw new OwnershipError(`LUN ${lun} is not waiting for failback (owner ${rec.currentOwner ?? 'none'}, default ${rec.defaultOwner}, SP ${rec.defaultOwner} ${this.up[rec.defaultOwner] ? 'up' : 'down'})`);
    }
    return this.commit([this.move(lun, rec.defaultOwner, 'failback')]);
  }

  /** LUNs not on their default owner although that SP is up. */
  failbackPending(): number[] {
    return [...this.luns.entries()]
      .filter(([, r]) => r.currentOwner !== r.defaultOwner && this.up[r.defaultOwner])
      .map(([lun]) => lun)
      .sort((a, b) => a - b);
  }

  /** Throws if the two views disagree, a LUN has two owners, or an owner is not up. */
  assertInvariant(): void {
    for (const lun of this.owned.A) {
      if (this.owned.B.has(lun)) throw new OwnershipError(`invariant: LUN ${lun} is owned by both SP A and SP B`);
    }
    for (const sp of SP_NAMES) {
      for (const lun of this.owned[sp]) {
        const r = this.luns.get(lun);
        if (!r || r.currentOwner !== sp) throw new OwnershipError(`invariant: SP ${sp} lists LUN ${lun}, whose record says ${r ? String(r.currentOwner) : 'no such LUN'}`);
        if (!this.up[sp]) throw new OwnershipError(`invariant: SP ${sp} owns LUN ${lun} but is not up`);
      }
    }
    for (const [lun, r] of this.luns) {
      if (r.currentOwner !== null && !this.owned[r.currentOwner].has(lun)) throw new OwnershipError(`invariant: LUN ${lun} says owner ${r.currentOwner}, which does not list it`);
    }
  }

  private get(lun: number): { defaultOwner: SpName; currentOwner: SpName | null } {
    const r = this.luns.get(lun);
    if (!r) throw new OwnershipError(`no LUN ${lun}`);
    return r;
  }

  /** Moves the LUN: release by the old owner first, then acquire by the new one. */
  private move(lun: number, to: SpName | null, reason: OwnershipReason): OwnershipEvent {
    const r = this.get(lun);
    const from = r.currentOwner;
    if (from) this.owned[from].delete(lun);
    r.currentOwner = null;
    if (to) {
      if (!this.up[to]) throw new OwnershipError(`invariant: assigning LUN ${lun} to SP ${to}, which is not up`);
      if (this.owned[peerOf(to)].has(lun)) throw new OwnershipError(`invariant: LUN ${lun} still owned by SP ${peerOf(to)}`);
      this.owned[to].add(lun);
      r.currentOwner = to;
    }
    return { lun, from, to, reason };
  }

  private commit(events: OwnershipEvent[]): OwnershipEvent[] {
    this.assertInvariant();
    for (const e of events) this.emit('change', e);
    return events;
  }
}

function checkSp(sp: SpName): SpName {
  if (sp !== 'A' && sp !== 'B') throw new OwnershipError(`unknown SP ${String(sp)}`);
  return sp;
}
