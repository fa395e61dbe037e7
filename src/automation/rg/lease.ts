/**
 * Who may act for a resource group: a lease held by one site's controller, numbered by an epoch
 * that only grows. Pure: every function returns the new lease or throws LeaseRefusal.
 *
 * - A controller acquires a lease from its peer: it first promises itself the next epoch (it will
 *   refuse any transfer at or below it), then asks the peer to hand the lease over at that epoch.
 *   Two controllers asking at once both refuse each other: neither acts (never two).
 * - Only a site recovery takes it without the peer (forced, the other site declared lost); the
 *   old holder learns the higher epoch when it returns and stops what it ran (join cleanup).
 */
export interface Lease {
  rg: string;
  /** the site whose controller may act; null: nobody yet */
  holder: string | null;
  epoch: number;
  /** the highest epoch this controller promised to ask for (refuses transfers at or below it) */
  promised: number;
  /** taken without the peer (a site recovery) */
  forced: boolean;
}

export class LeaseRefusal extends Error {
  constructor(
    readonly code: 'lease-conflict' | 'stale-epoch' | 'not-holder',
    message: string,
  ) {
    super(message);
  }
}

export const emptyLease = (rg: string): Lease => ({ rg, holder: null, epoch: 0, promised: 0, forced: false });

function assertLease(l: Lease): Lease {
  if (!(Number.isInteger(l.epoch) && l.epoch >= 0 && l.promised >= 0)) throw new Error(`lease ${l.rg}: bad epoch ${l.epoch}/${l.promised}`);
  if ((l.holder === null) !== (l.epoch === 0)) throw new Error(`lease ${l.rg}: holder ${l.holder} at epoch ${l.epoch}`);
  return l;
}

/** The epoch `me` will ask its peer for; recorded before asking. */
export function promise(l: Lease, me: string): { lease: Lease; epoch: number } {
  if (l.holder === me) throw new LeaseRefusal('lease-conflict', `lease ${l.rg}: ${me} holds it already (epoch ${l.epoch})`);
  const epoch = Math.max(l.epoch, l.promised) + 1;
  return { lease: assertLease({ ...l, promised: epoch }), epoch };
}

/** The peer asks for the lease at `epoch`: granted unless this side promised or saw that epoch. */
export function grant(l: Lease, to: string, epoch: number): Lease {
  if (epoch <= l.epoch) throw new LeaseRefusal('stale-epoch', `lease ${l.rg}: epoch ${epoch} is not newer than ${l.epoch} (held by ${l.holder})`);
  if (epoch <= l.promised) throw new LeaseRefusal('lease-conflict', `lease ${l.rg}: this controller is itself acquiring it (epoch ${l.promised}); retry`);
  return assertLease({ ...l, holder: to, epoch, forced: false });
}

/** The peer granted the lease at the promised epoch. */
export function granted(l: Lease, me: string, epoch: number): Lease {
  if (epoch !== l.promised) throw new Error(`lease ${l.rg}: granted epoch ${epoch} is not the promised ${l.promised}`);
  return assertLease({ ...l, holder: me, epoch, forced: false });
}

/** A site recovery: taken without the peer, the epoch above anything promised. */
export function takeForced(l: Lease, me: string): Lease {
  if (l.holder === me) return l;
  const epoch = Math.max(l.epoch, l.promised) + 1;
  return assertLease({ ...l, holder: me, epoch, promised: epoch, forced: true });
}

/** The peer's lease, learned on (re)connection: the higher epoch wins; equal epochs must agree. */
export function merge(local: Lease, remote: Pick<Lease, 'holder' | 'epoch' | 'forced'>): Lease {
  if (remote.epoch > local.epoch) return assertLease({ ...local, holder: remote.holder, epoch: remote.epoch, forced: remote.forced });
  if (remote.epoch === local.epoch && remote.holder !== local.holder) throw new Error(`lease ${local.rg}: epoch ${local.epoch} held by both ${local.holder} and ${remote.holder}: the lease protocol was broken`);
  return local;
}
