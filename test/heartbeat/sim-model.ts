// A deterministic discrete-time model of a production master and a standby master, using only
// the pure heartbeat core (src/heartbeat). Every cycle the production sends one heartbeat on the
// network and writes it to every heartbeat mirror; each path delivers it or not per the fault
// schedule; the standby reads every monitored path half an interval later with observe and
// applyVerdict, then asks failoverDecision; the production asks fenceDecision. A witness in a
// third site sees the production when the production is alive and its link to the witness is up.
import {
  applyVerdict,
  decodeHeartbeat,
  electMaster,
  emptyTable,
  encodeHeartbeat,
  failoverDecision,
  fenceDecision,
  HB_BLOCK_BYTES,
  installDevice,
  MAX_SERIAL,
  nextSerial,
  observe,
  twoWritable,
  type FailoverWitness,
  type FenceWitness,
  type HeartbeatRead,
  type HeartbeatStatusTable,
  type PeerObservation,
  type ValidityConfig,
} from '../../src/heartbeat/index.js';

export const INTERVAL = 1000;
export const TIMEOUT = 5000;
export const FENCE_AFTER = 3000;
export const RECOVER_AFTER = 3;
export const CYCLES = 50;
const PROD_HOSTS = ['prod-1', 'prod-2'];
const VALIDITY: ValidityConfig = { knownSenders: PROD_HOSTS, instance: 1, timeoutMs: TIMEOUT };

export type Fault =
  | { kind: 'network-cut'; from: number; to: number }
  | { kind: 'mirror-fracture'; mirror: number; from: number }
  | { kind: 'latency-spike'; target: 'network' | 'remote-link'; from: number; to: number; delayMs: number }
  | { kind: 'sp-takeover'; mirrors: number[]; side: 'production' | 'standby'; atMs: number; stallMs: number }
  | { kind: 'standby-restart'; at: number; down: number }
  | { kind: 'production-takeover'; at: number; detect: number };
export type FaultKind = Fault['kind'];

export interface Scenario {
  mirrors: number;
  witness: boolean;
  faults: Fault[];
  /** Cycle at which the whole production site is lost. */
  siteLossAt?: number;
  /** Cycles [at, until) in which every inter-site path (network and remote link) is cut. */
  partition?: { at: number; until: number; witnessCut: 'production' | 'standby' | 'none' };
  firstSerial: number;
  /** When the standby reads, after the production's send, in ms (0 < phase < INTERVAL). */
  readPhase: number;
}

export interface Outcome {
  failoverAtMs: number | null;
  failoverReason: string | null;
  fencedEver: boolean;
  twoWritableCycles: number;
  refusedUnfence: number;
  endFenced: boolean;
  /** Path status changes at the standby: ENABLE -> FAILED and FAILED -> ENABLE. */
  pathFailures: number;
  pathRecoveries: number;
}

type PathId = 'network' | number;
interface InFlight {
  deliverAt: number;
  buf: Buffer;
}

const BLANK = Buffer.alloc(HB_BLOCK_BYTES);
const decoded = new WeakMap<Buffer, HeartbeatRead>();
function decode(buf: Buffer): HeartbeatRead {
  let r = decoded.get(buf);
  if (!r) decoded.set(buf, (r = decodeHeartbeat(buf)));
  return r;
}

const within = (k: number, from: number, to: number) => k >= from && k < to;

export class World {
  // production site
  private serial: Record<string, number>;
  private master: string | null = 'prod-1';
  private prodAlive = true;
  private fenced = false;
  private lastContactMs = 0;
  // paths
  private readonly queues = new Map<PathId, InFlight[]>();
  private readonly lastDeliverAt = new Map<PathId, number>();
  private readonly svol: Buffer[];
  // standby site
  private table!: HeartbeatStatusTable;
  private obs = new Map<PathId, PeerObservation | null>();
  private failedOver = false;
  readonly out: Outcome = { failoverAtMs: null, failoverReason: null, fencedEver: false, twoWritableCycles: 0, refusedUnfence: 0, endFenced: false, pathFailures: 0, pathRecoveries: 0 };

  constructor(private readonly sc: Scenario) {
    this.serial = { 'prod-1': sc.firstSerial - 1, 'prod-2': (sc.firstSerial * 7919) % MAX_SERIAL };
    this.svol = Array.from({ length: sc.mirrors }, () => BLANK);
    for (const p of this.pathIds()) this.queues.set(p, []);
    this.resetStandby();
  }

  run(): Outcome {
    for (let k = 0; k < CYCLES; k++) {
      this.productionStep(k);
      this.standbyStep(k);
      if (twoWritable({ productionWritable: this.prodAlive && !this.fenced, standbyWritable: this.failedOver })) this.out.twoWritableCycles++;
    }
    this.out.endFenced = this.fenced;
    return this.out;
  }

  private pathIds(): PathId[] {
    return ['network', ...Array.from({ length: this.sc.mirrors }, (_, i) => i)];
  }

  private faults<K extends FaultKind>(kind: K): Extract<Fault, { kind: K }>[] {
    return this.sc.faults.filter((f): f is Extract<Fault, { kind: K }> => f.kind === kind);
  }

  private partitioned(k: number): boolean {
    const p = this.sc.partition;
    return p !== undefined && within(k, p.at, p.until);
  }

  private witnessCut(side: 'production' | 'standby', k: number): boolean {
    return this.partitioned(k) && this.sc.partition!.witnessCut === side;
  }

  // ---- production ------------------------------------------------------------------------------

  private sender(k: number): string | null {
    const t = this.faults('production-takeover')[0];
    if (!t || k < t.at) return 'prod-1';
    if (k < t.at + t.detect) return null; // prod-1 is dead, prod-2 has not noticed yet
    const d = electMaster(PROD_HOSTS, { 'prod-1': { valid: false, reason: 'silent' } }, 'prod-2', this.master);
    this.master = d.master;
    return d.master;
  }

  private productionStep(k: number): void {
    const s = k * INTERVAL;
    if (this.sc.siteLossAt !== undefined && k >= this.sc.siteLossAt) {
      this.prodAlive = false;
      return;
    }
    if (!this.partitioned(k)) this.lastContactMs = s;
    this.fenceStep(s, k);
    const host = this.sender(k);
    if (host === null) return;
    this.serial[host] = nextSerial(this.serial[host]!);
    const clockOffset = host === 'prod-1' ? 1_764_000_000_000 : 1_700_000_000_000;
    const buf = encodeHeartbeat({ serial: this.serial[host]!, timeMs: clockOffset + s, senderId: host, site: 'alpha', clusterName: 'sim', instance: 1, role: 'production', master: true, noticeSeq: 0 });
    for (const p of this.pathIds()) this.send(p, s, k, buf);
  }

  private fenceStep(s: number, k: number): void {
    const witness: FenceWitness = !this.sc.witness ? 'not-configured' : this.witnessCut('production', k) ? 'unreachable' : 'reachable';
    const d = fenceDecision({ lastPeerContactAgeMs: s - this.lastContactMs, witness, fenceAfterMs: FENCE_AFTER, fenced: this.fenced });
    if (d.action === 'fence') {
      this.fenced = true;
      this.out.fencedEver = true;
    } else if (d.action === 'unfence') {
      // The agent's policy: never unfence once the standby has failed over.
      if (this.failedOver) this.out.refusedUnfence++;
      else this.fenced = false;
    }
  }

  private send(p: PathId, s: number, k: number, buf: Buffer): void {
    if (this.partitioned(k)) return;
    let notBefore = s;
    if (p === 'network') {
      if (this.faults('network-cut').some((f) => within(k, f.from, f.to))) return;
    } else {
      if (this.faults('mirror-fracture').some((f) => f.mirror === p && k >= f.from)) return;
      for (const f of this.faults('sp-takeover')) {
        if (f.side === 'production' && f.mirrors.includes(p) && s >= f.atMs && s < f.atMs + f.stallMs) notBefore = f.atMs + f.stallMs;
      }
    }
    const target = p === 'network' ? 'network' : 'remote-link';
    for (const f of this.faults('latency-spike')) if (f.target === target && within(k, f.from, f.to)) notBefore = Math.max(notBefore, s + f.delayMs);
    const deliverAt = Math.max(notBefore, this.lastDeliverAt.get(p) ?? 0); // each path is FIFO
    this.lastDeliverAt.set(p, deliverAt);
    this.queues.get(p)!.push({ deliverAt, buf });
  }

  // ---- standby ---------------------------------------------------------------------------------

  private resetStandby(): void {
    let t = emptyTable();
    for (let i = 0; i < this.sc.mirrors; i++) {
      const r = installDevice(t, { mirror: `hb${i}`, address: `alpha:hb${i}>bravo:hb${i}` });
      if (!r.ok) throw new Error(r.detail);
      t = r.table;
    }
    this.table = t;
    this.obs = new Map(this.pathIds().map((p) => [p, null]));
  }

  /** Delivered messages up to `r`: the newest one (network: or null when none arrived). */
  private receive(p: PathId, r: number): Buffer | null {
    const q = this.queues.get(p)!;
    let last: Buffer | null = null;
    while (q.length > 0 && q[0]!.deliverAt <= r) last = q.shift()!.buf;
    if (p === 'network') return last;
    if (last) this.svol[p] = last;
    return this.svol[p]!;
  }

  private standbyStep(k: number): void {
    const r = k * INTERVAL + this.sc.readPhase;
    for (const f of this.faults('standby-restart')) {
      if (within(k, f.at, f.at + f.down)) return;
      if (k === f.at + f.down) this.resetStandby();
    }
    for (const p of this.pathIds()) {
      const buf = this.receive(p, r);
      if (p === 'network' && this.table.networkEnable === 'DISABLE') continue;
      const readError = p !== 'network' && this.faults('sp-takeover').some((f) => f.side === 'standby' && f.mirrors.includes(p) && r >= f.atMs && r < f.atMs + f.stallMs);
      const read = buf === null || readError ? null : decode(buf);
      const o = observe(this.obs.get(p) ?? null, read, r, VALIDITY);
      this.obs.set(p, o.observation);
      const a = applyVerdict(this.table, p === 'network' ? 'network' : { mirror: `hb${p}` }, o.verdict, { recoverAfter: RECOVER_AFTER, nowMonoMs: r });
      this.table = a.table;
      for (const c of a.changes) {
        if (c.field !== 'networkEnable' && c.field !== 'device') continue;
        if (c.to === 'FAILED') this.out.pathFailures++;
        if (c.reason === 'recovered') this.out.pathRecoveries++;
      }
    }
    const d = failoverDecision({ table: this.table, witness: this.standbyWitness(k), failedOver: this.failedOver });
    if (d.action === 'failover') {
      this.failedOver = true;
      this.out.failoverAtMs = r;
      this.out.failoverReason = d.reason;
    }
  }

  private standbyWitness(k: number): FailoverWitness {
    if (!this.sc.witness) return 'not-configured';
    if (this.witnessCut('standby', k)) return 'unreachable';
    return this.prodAlive && !this.witnessCut('production', k) ? 'peer-alive' : 'peer-dead';
  }
}
