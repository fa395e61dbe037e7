/**
 * Failure notices: the failure indication message 1100 of the source (Figs. 10, 11: failed
 * component id 1105, parts information 1110, time of detection 1115, level of failure 1120).
 * The production master writes each notice into a ring of NOTICE_SLOTS slots that follows the
 * heartbeat block on every heartbeat volume (and sends it on the network); its heartbeats carry
 * the newest notice's sequence number, so the standby knows when to read the ring. Slot layout
 * (NOTICE_SLOT_BYTES, little-endian):
 *
 * | offset | size | field                                                        |
 * | -----: | ---: | ------------------------------------------------------------ |
 * |      0 |    8 | magic `SBXNOTIC`                                             |
 * |      8 |    2 | version (1)                                                  |
 * |     10 |    1 | level: index in NOTICE_LEVELS                                |
 * |     11 |    1 | component kind: index in COMPONENT_KINDS                     |
 * |     12 |    4 | CRC32C of the 512 bytes with this field zero                 |
 * |     16 |    4 | sequence number (1, 2, ...; slot = (seq - 1) % 16)           |
 * |     20 |    4 | reserved, zero                                               |
 * |     24 |    8 | detected at (ms, sender's wall clock)                        |
 * |     32 |   65 | component id: 1-byte length + up to 64 bytes UTF-8           |
 * |     97 |   65 | address: 1-byte length + up to 64 bytes UTF-8 (may be empty) |
 * |    162 |   65 | sender id: 1-byte length + up to 64 bytes UTF-8              |
 * |    227 |  258 | details: 2-byte length + up to 256 bytes UTF-8 (may be empty)|
 * |    485 |   27 | zero                                                         |
 */
import { checkEnvelope, checkU32, HeartbeatEncodeError, isAllZero, readString, readU64, sealCrc, writeString, writeU64 } from './codec.js';
import { MAX_SERIAL, NOTICE_SLOT_BYTES, NOTICE_SLOTS } from './message.js';

export const NOTICE_MAGIC = Buffer.from('SBXNOTIC', 'latin1');
export const NOTICE_VERSION = 1;
export const NOTICE_MAX_DETAILS_BYTES = 256;
export const NOTICE_MAX_STRING_BYTES = 64;

export const NOTICE_LEVELS = ['SYSTEM DOWN', 'SERIOUS', 'MODERATE', 'TEMPORALLY'] as const;
export type NoticeLevel = (typeof NOTICE_LEVELS)[number];

export const COMPONENT_KINDS = ['host', 'array', 'sp', 'lun', 'heartbeat-volume', 'network', 'link'] as const;
export type ComponentKind = (typeof COMPONENT_KINDS)[number];

export const NOTICE_OFFSETS = {
  magic: 0,
  version: 8,
  level: 10,
  kind: 11,
  crc: 12,
  seq: 16,
  reserved: 20,
  detectedAtMs: 24,
  componentId: 32,
  address: 97,
  senderId: 162,
  details: 227,
  end: 485,
} as const;

export interface FailureNotice {
  seq: number;
  componentId: string;
  componentKind: ComponentKind;
  details: string;
  address: string;
  detectedAtMs: number;
  level: NoticeLevel;
  senderId: string;
}

type StringField = 'componentId' | 'address' | 'senderId' | 'details';
const STRING_FIELDS: readonly (readonly [StringField, number, 1 | 2, boolean])[] = [
  ['componentId', NOTICE_MAX_STRING_BYTES, 1, false],
  ['address', NOTICE_MAX_STRING_BYTES, 1, true],
  ['senderId', NOTICE_MAX_STRING_BYTES, 1, false],
  ['details', NOTICE_MAX_DETAILS_BYTES, 2, true],
];

export type NoticeDecodeReason = 'blank' | 'bad-magic' | 'bad-version' | 'bad-crc' | 'bad-length' | 'bad-field';
export type NoticeRead = { ok: true; notice: FailureNotice } | { ok: false; reason: NoticeDecodeReason; detail: string };

/** Encodes one notice slot; throws HeartbeatEncodeError on a field out of range. */
export function encodeNotice(n: FailureNotice): Buffer {
  checkU32(n.seq, 'seq', 1);
  const level = NOTICE_LEVELS.indexOf(n.level);
  if (level < 0) throw new HeartbeatEncodeError(`unknown notice level ${String(n.level)}`);
  const kind = COMPONENT_KINDS.indexOf(n.componentKind);
  if (kind < 0) throw new HeartbeatEncodeError(`unknown component kind ${String(n.componentKind)}`);
  const buf = Buffer.alloc(NOTICE_SLOT_BYTES);
  NOTICE_MAGIC.copy(buf, NOTICE_OFFSETS.magic);
  buf.writeUInt16LE(NOTICE_VERSION, NOTICE_OFFSETS.version);
  buf.writeUInt8(level, NOTICE_OFFSETS.level);
  buf.writeUInt8(kind, NOTICE_OFFSETS.kind);
  buf.writeUInt32LE(n.seq, NOTICE_OFFSETS.seq);
  writeU64(buf, NOTICE_OFFSETS.detectedAtMs, n.detectedAtMs, 'detectedAtMs');
  for (const [name, max, prefix, allowEmpty] of STRING_FIELDS) writeString(buf, NOTICE_OFFSETS[name], n[name], max, prefix, name, allowEmpty);
  sealCrc(buf, NOTICE_OFFSETS.crc);
  return buf;
}

const ENVELOPE = { bytes: NOTICE_SLOT_BYTES, magic: NOTICE_MAGIC, version: NOTICE_VERSION, versionOff: NOTICE_OFFSETS.version, crcOff: NOTICE_OFFSETS.crc, what: 'notice slot' };

/** Decodes one notice slot; never throws on bad bytes. */
export function decodeNotice(buf: Buffer): NoticeRead {
  const env = checkEnvelope(buf, ENVELOPE);
  if (!env.ok) return env;
  const bad = (detail: string): NoticeRead => ({ ok: false, reason: 'bad-field', detail });
  const level = NOTICE_LEVELS[buf.readUInt8(NOTICE_OFFSETS.level)];
  if (level === undefined) return bad(`unknown level index ${buf.readUInt8(NOTICE_OFFSETS.level)}`);
  const kind = COMPONENT_KINDS[buf.readUInt8(NOTICE_OFFSETS.kind)];
  if (kind === undefined) return bad(`unknown component kind index ${buf.readUInt8(NOTICE_OFFSETS.kind)}`);
  const seq = buf.readUInt32LE(NOTICE_OFFSETS.seq);
  if (seq === 0) return bad('sequence number 0 (notices start at 1)');
  if (buf.readUInt32LE(NOTICE_OFFSETS.reserved) !== 0) return bad('reserved field is not zero');
  const at = readU64(buf, NOTICE_OFFSETS.detectedAtMs, 'detectedAtMs');
  if (!at.ok) return bad(at.detail);
  const f: Record<StringField, string> = { componentId: '', address: '', senderId: '', details: '' };
  for (const [name, max, prefix, allowEmpty] of STRING_FIELDS) {
    const r = readString(buf, NOTICE_OFFSETS[name], max, prefix, name, allowEmpty);
    if (!r.ok) return bad(r.detail);
    f[name] = r.value;
  }
  if (!isAllZero(buf.subarray(NOTICE_OFFSETS.end))) return bad(`bytes after offset ${NOTICE_OFFSETS.end} are not zero`);
  const notice: FailureNotice = { seq, componentId: f.componentId, componentKind: kind, details: f.details, address: f.address, detectedAtMs: at.value, level, senderId: f.senderId };
  return { ok: true, notice };
}

/** The ring slot of notice `seq` (seq starts at 1). */
export function noticeSlot(seq: number): number {
  if (!Number.isInteger(seq) || seq < 1 || seq > MAX_SERIAL) throw new RangeError(`notice seq must be an integer 1..${MAX_SERIAL}, got ${seq}`);
  return (seq - 1) % NOTICE_SLOTS;
}

/** Byte offset of notice `seq`'s slot inside the notice ring (add HB_BLOCK_BYTES for the volume offset). */
export function noticeSlotOffset(seq: number): number {
  return noticeSlot(seq) * NOTICE_SLOT_BYTES;
}

/**
 * The valid notices of the ring `area` (NOTICE_SLOTS * NOTICE_SLOT_BYTES bytes) with
 * seq > lastSeenSeq, in seq order. Blank, corrupt and misplaced slots are skipped. A reader
 * more than NOTICE_SLOTS behind gets what is still there; `missedNotices` tells the gap.
 */
export function newNotices(area: Buffer, lastSeenSeq: number): FailureNotice[] {
  if (area.length !== NOTICE_SLOTS * NOTICE_SLOT_BYTES) throw new RangeError(`notice ring is ${area.length} bytes, expected ${NOTICE_SLOTS * NOTICE_SLOT_BYTES}`);
  if (!Number.isInteger(lastSeenSeq) || lastSeenSeq < 0) throw new RangeError(`lastSeenSeq must be a non-negative integer, got ${lastSeenSeq}`);
  const out: FailureNotice[] = [];
  for (let slot = 0; slot < NOTICE_SLOTS; slot++) {
    const r = decodeNotice(area.subarray(slot * NOTICE_SLOT_BYTES, (slot + 1) * NOTICE_SLOT_BYTES));
    if (!r.ok || r.notice.seq <= lastSeenSeq || noticeSlot(r.notice.seq) !== slot) continue;
    out.push(r.notice);
  }
  return out.sort((a, b) => a.seq - b.seq);
}

/** How many notices after lastSeenSeq were overwritten before they were read (0 when none). */
export function missedNotices(lastSeenSeq: number, got: readonly FailureNotice[]): number {
  const first = got[0];
  return first === undefined ? 0 : Math.max(0, first.seq - lastSeenSeq - 1);
}

/**
 * What the production agent can see about a component. `failed`: the component is failed or
 * unreachable now. `recovered`: it failed and is back (a transient error). `redundant`:
 * something else still does its job (the peer SP took over, other hosts or heartbeat volumes
 * are left). `cacheDirty`: a LUN lost cached writes (power failure without a battery).
 */
export interface ComponentFacts {
  failed: boolean;
  recovered?: boolean;
  redundant?: boolean;
  cacheDirty?: boolean;
}

export type LevelReason =
  | 'transient-recovered'
  | 'lun-cache-dirty'
  | 'array-unreachable'
  | 'last-host-down'
  | 'host-down'
  | 'sp-down-peer-took-over'
  | 'both-sps-down'
  | 'lun-failed'
  | 'heartbeat-volume-failed'
  | 'all-heartbeat-volumes-failed'
  | 'network-down'
  | 'remote-link-down';

export interface LevelDecision {
  level: NoticeLevel;
  reason: LevelReason;
  detail: string;
}

type Row = { redundant: [NoticeLevel, LevelReason]; alone: [NoticeLevel, LevelReason] };

/** The failure-level table (docs/heartbeat.md): per kind, with and without redundancy left. */
export const LEVEL_TABLE: Readonly<Record<ComponentKind, Row>> = {
  host: { redundant: ['SERIOUS', 'host-down'], alone: ['SYSTEM DOWN', 'last-host-down'] },
  array: { redundant: ['SYSTEM DOWN', 'array-unreachable'], alone: ['SYSTEM DOWN', 'array-unreachable'] },
  sp: { redundant: ['SERIOUS', 'sp-down-peer-took-over'], alone: ['SYSTEM DOWN', 'both-sps-down'] },
  lun: { redundant: ['SERIOUS', 'lun-failed'], alone: ['SERIOUS', 'lun-failed'] },
  'heartbeat-volume': { redundant: ['MODERATE', 'heartbeat-volume-failed'], alone: ['SERIOUS', 'all-heartbeat-volumes-failed'] },
  network: { redundant: ['MODERATE', 'network-down'], alone: ['MODERATE', 'network-down'] },
  link: { redundant: ['SERIOUS', 'remote-link-down'], alone: ['SERIOUS', 'remote-link-down'] },
};

/**
 * The level of a failure notice. Checked in order: a recovered transient error is
 * TEMPORALLY; a cache-dirty LUN is SERIOUS; otherwise LEVEL_TABLE by kind and redundancy.
 * Throws when there is nothing to report (neither failed nor recovered) or on an unknown kind.
 */
export function classifyLevel(kind: ComponentKind, facts: ComponentFacts): LevelDecision {
  const row = LEVEL_TABLE[kind];
  if (!row) throw new Error(`unknown component kind ${String(kind)}`);
  if (facts.recovered) {
    if (facts.failed) throw new Error(`${kind}: facts say both failed and recovered`);
    return { level: 'TEMPORALLY', reason: 'transient-recovered', detail: `${kind} had a transient error that recovered; logged only` };
  }
  if (!facts.failed) throw new Error(`${kind}: nothing to classify (neither failed nor recovered)`);
  if (kind === 'lun' && facts.cacheDirty) return { level: 'SERIOUS', reason: 'lun-cache-dirty', detail: 'LUN is cache-dirty: cached writes were lost and it needs an explicit recovery' };
  const [level, reason] = facts.redundant ? row.redundant : row.alone;
  const what = facts.redundant ? 'redundancy left' : 'no redundancy left';
  return { level, reason, detail: `${kind} failed (${what}): ${level}` };
}
