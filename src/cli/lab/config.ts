/** What each array process of a lab is started with: its config and its remote-link peers. */
import type { ArrayServiceConfig } from '../../control/service.js';
import type { PeerConfig } from '../../replication/mirror/types.js';
import { linkBetween } from './links.js';
import type { Lab, LabArray } from './types.js';
import { isWildcard } from './values.js';

/** What an array process is started with; `remoteLink` runs its mirror driver. */
export type LabArrayConfig = ArrayServiceConfig & { remoteLink?: { bind: string; port: number; peers: PeerConfig[] } };

/** Where each link's emulator listens: per link name, `toB` (array a dials it) and `toA` (b dials it). */
export type LinkListeners = Map<string, { toB: { host: string; port: number }; toA: { host: string; port: number } }>;

/**
 * The remote-link peers of array `a`: for each link of the lab touching it (with a secret), the
 * other array reached through the emulator's listener for traffic from `a` (toB when `a` is the
 * link's a, toA when it is b); for an array on another host with no link to `a` and a secret,
 * its remote-link address directly. `listeners` has the emulators' actual ports (the lab file's
 * may be 0: any free port).
 */
export function peersOf(a: LabArray, lab: Pick<Lab, 'arrays' | 'links'>, listeners?: LinkListeners): PeerConfig[] {
  const peers: PeerConfig[] = [];
  const loop = (h: string) => (isWildcard(h) || h === '' ? '127.0.0.1' : h);
  for (const l of lab.links) {
    if (l.a !== a.name && l.b !== a.name) continue;
    if (l.secret === undefined) continue;
    const isA = l.a === a.name;
    const actual = listeners?.get(l.name);
    const ep = actual ? (isA ? actual.toB : actual.toA) : { host: l.listen.bind, port: isA ? l.listen.toB : l.listen.toA };
    peers.push({ array: isA ? l.b : l.a, host: loop(ep.host), port: ep.port, secret: l.secret });
  }
  for (const o of lab.arrays) {
    if (o === a || !o.host || !o.remoteLink || o.secret === undefined) continue;
    if (linkBetween(lab.links, a.name, o.name)) continue;
    peers.push({ array: o.name, host: o.remoteLink.address.host, port: o.remoteLink.address.port, secret: o.secret });
  }
  return peers;
}

/**
 * The config an array process is started with. It gets `remoteLink` (and so runs its mirror
 * driver, listening on that port) when it has a remote-link port and at least one peer: a link
 * with a secret, or an array on another host with one. Without a secret nobody could connect, and
 * the port stays free for whatever else the link should reach.
 */
export function arrayConfig(a: LabArray, lab?: Pick<Lab, 'arrays' | 'links'>, listeners?: LinkListeners): LabArrayConfig {
  const peers = a.remoteLink && lab ? peersOf(a, lab, listeners) : [];
  return {
    name: a.name,
    dir: a.dir,
    nbd: a.nbd,
    api: a.api,
    luns: a.luns,
    readOnly: a.readOnly,
    ...(a.sps ? { sps: a.sps } : {}),
    ...(a.snapshots ? { snapshots: a.snapshots } : {}),
    ...(a.remoteLink && peers.length ? { remoteLink: { bind: a.remoteLink.bind, port: a.remoteLink.port, peers } } : {}),
  };
}
