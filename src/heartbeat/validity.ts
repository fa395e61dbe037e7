/**
 * The source's valid-heartbeat rules ("Method of receiving a heartbeat message 300"):
 * (1) the identifier 330 names a configured member host of the peer site; (2) the serial
 * number 310 advanced within the timeout; (3) the time 320 changed within the timeout; plus
 * (4) the message carries the current cluster instance (an expired instance is invalid), and
 * user-added rules. The receiver never compares a message's time with its own clock: "stale"
 * means its own monotonic clock says the serial (or time) has not changed for more than
 * timeoutMs. Pure.
 */
import { serialAdvanced, type HeartbeatMessage, type HeartbeatRead } from './message.js';

/** What a receiver remembers about one path's sender. serial 0: listening, nothing heard yet. */
export interface PeerObservation {
  senderId: string;
  serial: number;
  timeMs: number;
  instance: number;
  serialChangedAtMonoMs: number;
  timeChangedAtMonoMs: number;
  firstSeenMonoMs: number;
}

/** A user-added validity rule: null accepts, a reason rejects the message. */
export type UserRule = (msg: HeartbeatMessage, obs: PeerObservation | null) => null | { reason: string; detail: string };

export interface ValidityConfig {
  /** The configured member hosts of the peer site (rule 1). */
  knownSenders: readonly string[];
  /** The current cluster instance (rule 4). */
  instance: number;
  /** Rules 2 and 3: the longest the serial or time may stay unchanged. */
  timeoutMs: number;
  rules?: readonly UserRule[];
}

export type ValidityReason = 'ok' | 'waiting' | 'unknown-sender' | 'serial-stale' | 'time-stale' | 'instance-expired' | 'unreadable' | 'silent' | 'user-rule';

export interface ValidityVerdict {
  valid: boolean;
  /** A new serial was seen this cycle. */
  fresh: boolean;
  reason: ValidityReason;
  detail: string;
}

export interface Observed {
  observation: PeerObservation | null;
  verdict: ValidityVerdict;
}

function checkConfig(cfg: ValidityConfig): void {
  if (!Array.isArray(cfg.knownSenders) || cfg.knownSenders.length === 0) throw new RangeError('knownSenders must list at least one sender');
  if (!Number.isInteger(cfg.instance) || cfg.instance < 0) throw new RangeError(`instance must be a non-negative integer, got ${cfg.instance}`);
  if (!Number.isFinite(cfg.timeoutMs) || cfg.timeoutMs <= 0) throw new RangeError(`timeoutMs must be positive, got ${cfg.timeoutMs}`);
}

function checkClock(prev: PeerObservation | null, now: number): void {
  if (!Number.isFinite(now)) throw new RangeError(`nowMonoMs must be finite, got ${now}`);
  if (prev && (now < prev.serialChangedAtMonoMs || now < prev.timeChangedAtMonoMs || now < prev.firstSeenMonoMs)) {
    throw new RangeError(`monotonic clock went backwards: now ${now}, observation last changed at ${Math.max(prev.serialChangedAtMonoMs, prev.timeChangedAtMonoMs)}`);
  }
}

/** An observation that has heard nothing yet: silence is measured from `now`. */
export function listening(now: number, instance: number): PeerObservation {
  return { senderId: '', serial: 0, timeMs: 0, instance, serialChangedAtMonoMs: now, timeChangedAtMonoMs: now, firstSeenMonoMs: now };
}

const verdict = (valid: boolean, fresh: boolean, reason: ValidityReason, detail: string): ValidityVerdict => ({ valid, fresh, reason, detail });

/**
 * One cycle of one path: `read` is what arrived (null: nothing this cycle; a blank volume counts
 * as nothing). Returns the updated observation and the verdict. A serial that went backwards
 * (not the wrap), a different known sender (a master takeover at the peer) or a new instance
 * starts a new observation (fresh, valid) rather than being invalid.
 */
export function observe(prev: PeerObservation | null, read: HeartbeatRead | null, nowMonoMs: number, cfg: ValidityConfig): Observed {
  checkConfig(cfg);
  checkClock(prev, nowMonoMs);
  const base = prev ?? listening(nowMonoMs, cfg.instance);
  if (read === null || (!read.ok && read.reason === 'blank')) return silence(base, nowMonoMs, cfg);
  if (!read.ok) return { observation: base, verdict: verdict(false, false, 'unreadable', `${read.reason}: ${read.detail}`) };
  const m = read.message;
  const rejected = builtinRules(m, cfg) ?? userRules(m, prev, cfg);
  if (rejected) return { observation: base, verdict: rejected };
  const restart = restartReason(base, m);
  if (restart) {
    const obs: PeerObservation = { senderId: m.senderId, serial: m.serial, timeMs: m.timeMs, instance: m.instance, serialChangedAtMonoMs: nowMonoMs, timeChangedAtMonoMs: nowMonoMs, firstSeenMonoMs: nowMonoMs };
    return { observation: obs, verdict: verdict(true, true, 'ok', `${restart}: ${m.senderId} serial ${m.serial}`) };
  }
  return advance(base, m, nowMonoMs, cfg);
}

function silence(obs: PeerObservation, now: number, cfg: ValidityConfig): Observed {
  const quiet = now - obs.serialChangedAtMonoMs;
  if (quiet > cfg.timeoutMs) {
    const what = obs.serial === 0 ? 'nothing heard' : `no new heartbeat from ${obs.senderId} (last serial ${obs.serial})`;
    return { observation: obs, verdict: verdict(false, false, 'silent', `${what} for ${quiet} ms > timeout ${cfg.timeoutMs} ms`) };
  }
  return { observation: obs, verdict: verdict(true, false, 'waiting', `nothing new for ${quiet} ms (timeout ${cfg.timeoutMs} ms)`) };
}

function builtinRules(m: HeartbeatMessage, cfg: ValidityConfig): ValidityVerdict | null {
  if (!cfg.knownSenders.includes(m.senderId)) {
    return verdict(false, false, 'unknown-sender', `sender ${JSON.stringify(m.senderId)} is not a member of the peer site (${cfg.knownSenders.join(', ')})`);
  }
  if (m.instance !== cfg.instance) {
    const which = m.instance < cfg.instance ? 'the message carries an expired instance' : "the receiver's instance is expired";
    return verdict(false, false, 'instance-expired', `instance ${m.instance} is not the current ${cfg.instance}: ${which}`);
  }
  return null;
}

function userRules(m: HeartbeatMessage, prev: PeerObservation | null, cfg: ValidityConfig): ValidityVerdict | null {
  for (const rule of cfg.rules ?? []) {
    const r = rule(m, prev);
    if (r) return verdict(false, false, 'user-rule', `${r.reason}: ${r.detail}`);
  }
  return null;
}

/** Why this message starts a new observation, or null when it continues `obs`. */
function restartReason(obs: PeerObservation, m: HeartbeatMessage): string | null {
  if (obs.serial === 0) return 'first contact';
  if (obs.senderId !== m.senderId) return `sender changed from ${obs.senderId} (master takeover at the peer)`;
  if (obs.instance !== m.instance) return `instance changed from ${obs.instance}`;
  if (m.serial !== obs.serial && !serialAdvanced(obs.serial, m.serial)) return `serial went back from ${obs.serial} (sender restarted)`;
  return null;
}

function advance(obs: PeerObservation, m: HeartbeatMessage, now: number, cfg: ValidityConfig): Observed {
  const fresh = m.serial !== obs.serial;
  const timeChanged = m.timeMs !== obs.timeMs;
  const next: PeerObservation = {
    ...obs,
    serial: m.serial,
    timeMs: m.timeMs,
    serialChangedAtMonoMs: fresh ? now : obs.serialChangedAtMonoMs,
    timeChangedAtMonoMs: timeChanged ? now : obs.timeChangedAtMonoMs,
  };
  const serialAge = now - next.serialChangedAtMonoMs;
  if (serialAge > cfg.timeoutMs) {
    return { observation: next, verdict: verdict(false, false, 'serial-stale', `serial ${m.serial} from ${m.senderId} unchanged for ${serialAge} ms > timeout ${cfg.timeoutMs} ms`) };
  }
  const timeAge = now - next.timeChangedAtMonoMs;
  if (timeAge > cfg.timeoutMs) {
    return { observation: next, verdict: verdict(false, fresh, 'time-stale', `time field from ${m.senderId} unchanged for ${timeAge} ms > timeout ${cfg.timeoutMs} ms`) };
  }
  if (fresh) return { observation: next, verdict: verdict(true, true, 'ok', `serial ${obs.serial} -> ${m.serial} from ${m.senderId}`) };
  return { observation: next, verdict: verdict(true, false, 'waiting', `serial ${m.serial} unchanged for ${serialAge} ms (timeout ${cfg.timeoutMs} ms)`) };
}
