import {
  BASE_ALLOCATION,
  BASE_ALLOCATION_ID,
  FLAG_FIXED_NEWSTYLE,
  FLAG_NO_ZEROES,
  INFO,
  KNOWN_CLIENT_FLAGS,
  LIMITS,
  NBDMAGIC,
  IHAVEOPT,
  OPT,
  OPTION_REPLY_MAGIC,
  REP,
} from './constants.js';
import { blockSizes, transmissionFlags, type ExportCatalog, type NbdExport } from './export.js';
import type { TlsMode } from './tls.js';

/** What the handshake settled for the transmission phase. */
export interface Negotiated {
  export: NbdExport;
  /** Structured replies (or extended headers, which include them) were negotiated. */
  structured: boolean;
  /** Extended headers: 32-byte requests with 64-bit lengths, every reply a 32-byte-header chunk. */
  extended: boolean;
  /** base:allocation was selected for this export: BLOCK_STATUS is allowed. */
  allocationContext: boolean;
  /** The client asked for NBD_INFO_BLOCK_SIZE, so it knows our minimum and we enforce it. */
  enforceBlockSize: boolean;
  flags: number;
}

export type OptionOutcome =
  | { replies: Buffer[]; then: 'continue' }
  | { replies: Buffer[]; then: 'transmission'; negotiated: Negotiated }
  /** STARTTLS acknowledged: send the replies in plaintext, then the TLS handshake; options go on over TLS. */
  | { replies: Buffer[]; then: 'starttls' }
  | { replies: Buffer[]; then: 'close'; reason: string };

export function greeting(): Buffer {
  const b = Buffer.alloc(18);
  b.writeBigUInt64BE(NBDMAGIC, 0);
  b.writeBigUInt64BE(IHAVEOPT, 8);
  b.writeUInt16BE(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES, 16);
  return b;
}

export function optionReply(option: number, type: number, payload?: Buffer): Buffer {
  const len = payload?.length ?? 0;
  const b = Buffer.allocUnsafe(20 + len);
  b.writeBigUInt64BE(OPTION_REPLY_MAGIC, 0);
  b.writeUInt32BE(option, 8);
  b.writeUInt32BE(type, 12);
  b.writeUInt32BE(len, 16);
  if (payload) payload.copy(b, 20);
  return b;
}

function errorReply(option: number, type: number, message: string): Buffer {
  return optionReply(option, type, Buffer.from(message, 'utf8'));
}

/** Reads length-prefixed fields out of an option payload; every read is bounds-checked. */
class OptionReader {
  pos = 0;
  constructor(private readonly data: Buffer) {}
  u16(): number | null {
    if (this.pos + 2 > this.data.length) return null;
    const v = this.data.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  u32(): number | null {
    if (this.pos + 4 > this.data.length) return null;
    const v = this.data.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  /** A u32-prefixed string; null if truncated, 'too-long' past the protocol limit or on NUL. */
  string(): string | null | 'bad' {
    const len = this.u32();
    if (len === null) return null;
    if (len > LIMITS.MAX_STRING || this.pos + len > this.data.length) return 'bad';
    const s = this.data.subarray(this.pos, this.pos + len);
    this.pos += len;
    if (s.includes(0)) return 'bad';
    return s.toString('utf8');
  }
  get done(): boolean {
    return this.pos === this.data.length;
  }
}

/**
 * The option-haggling phase of fixed newstyle negotiation, as a pure state machine: one option
 * in, the replies and what happens next out. The session feeds it; tests drive it directly.
 */
export class Negotiation {
  private structured = false;
  private extended = false;
  /** Export name base:allocation was selected for, if any. */
  private metaExport: string | null = null;
  /** STARTTLS was acknowledged: everything after it travels over TLS. */
  private tlsActive = false;
  readonly fixed: boolean;
  readonly noZeroes: boolean;

  constructor(
    private readonly catalog: ExportCatalog,
    clientFlags: number,
    private readonly shuttingDown: () => boolean = () => false,
    /** off: STARTTLS refused; on: optional; require: FORCEDTLS of the NBD spec. */
    private readonly tls: TlsMode = 'off',
  ) {
    this.fixed = (clientFlags & FLAG_FIXED_NEWSTYLE) !== 0;
    this.noZeroes = (clientFlags & FLAG_NO_ZEROES) !== 0;
  }

  /** Unknown client flag bits MUST end the connection. */
  static clientFlagsError(flags: number): string | null {
    return (flags & ~KNOWN_CLIENT_FLAGS) !== 0 ? `unknown client flags 0x${flags.toString(16)}` : null;
  }

  /** TLS is required and not yet started: only STARTTLS and ABORT are answered (FORCEDTLS). */
  get tlsRequired(): boolean {
    return this.tls === 'require' && !this.tlsActive;
  }

  handle(option: number, data: Buffer): OptionOutcome {
    // FORCEDTLS: EXPORT_NAME cannot be refused with an error, so the connection ends, unanswered.
    if (option === OPT.EXPORT_NAME && this.tlsRequired) return { replies: [], then: 'close', reason: 'NBD_OPT_EXPORT_NAME before STARTTLS, and TLS is required' };
    if (option === OPT.EXPORT_NAME) return this.exportName(data);
    // Plain (unfixed) newstyle knows no other option; replying would confuse such a client.
    if (!this.fixed) return { replies: [], then: 'close', reason: `option ${option} from a client without fixed newstyle` };
    if (option === OPT.ABORT) return { replies: [optionReply(option, REP.ACK)], then: 'close', reason: 'client sent NBD_OPT_ABORT' };
    if (this.shuttingDown()) return this.reply(errorReply(option, REP.ERR_SHUTDOWN, 'server is shutting down'));
    if (option === OPT.STARTTLS) return this.startTls(data);
    // Nothing about the exports leaks before TLS: every other option gets TLS_REQD.
    if (this.tlsRequired) return this.reply(errorReply(option, REP.ERR_TLS_REQD, 'TLS is required: send NBD_OPT_STARTTLS first'));
    switch (option) {
      case OPT.LIST:
        return this.list(data);
      case OPT.INFO:
      case OPT.GO:
        return this.infoOrGo(option, data);
      case OPT.STRUCTURED_REPLY:
        if (data.length !== 0) return this.reply(errorReply(option, REP.ERR_INVALID, 'NBD_OPT_STRUCTURED_REPLY takes no data'));
        if (this.extended) return this.reply(errorReply(option, REP.ERR_EXT_HEADER_REQD, 'extended headers already negotiated'));
        if (this.structured) return this.reply(errorReply(option, REP.ERR_INVALID, 'structured replies already negotiated'));
        this.structured = true;
        return this.reply(optionReply(option, REP.ACK));
      case OPT.EXTENDED_HEADERS:
        if (data.length !== 0) return this.reply(errorReply(option, REP.ERR_INVALID, 'NBD_OPT_EXTENDED_HEADERS takes no data'));
        if (this.extended) return this.reply(errorReply(option, REP.ERR_INVALID, 'extended headers already negotiated'));
        this.extended = true;
        this.structured = true;
        return this.reply(optionReply(option, REP.ACK));
      case OPT.LIST_META_CONTEXT:
      case OPT.SET_META_CONTEXT:
        return this.metaContext(option, data);
      default:
        return this.reply(errorReply(option, REP.ERR_UNSUP, `option ${option} is not supported`));
    }
  }

  private startTls(data: Buffer): OptionOutcome {
    const option = OPT.STARTTLS;
    if (data.length !== 0) return this.reply(errorReply(option, REP.ERR_INVALID, 'NBD_OPT_STARTTLS takes no data'));
    if (this.tls === 'off') return this.reply(errorReply(option, REP.ERR_POLICY, 'TLS is not offered by this server'));
    if (this.tlsActive) return this.reply(errorReply(option, REP.ERR_INVALID, 'TLS is already negotiated'));
    this.tlsActive = true;
    // What was negotiated in plaintext could have been tampered with: forget it (as nbdkit does).
    this.structured = false;
    this.extended = false;
    this.metaExport = null;
    return { replies: [optionReply(option, REP.ACK)], then: 'starttls' };
  }

  private reply(...replies: Buffer[]): OptionOutcome {
    return { replies, then: 'continue' };
  }

  private exportName(data: Buffer): OptionOutcome {
    // No way to return an error to EXPORT_NAME: refusing means hanging up.
    if (this.shuttingDown()) return { replies: [], then: 'close', reason: 'shutting down' };
    if (data.length > LIMITS.MAX_STRING || data.includes(0)) return { replies: [], then: 'close', reason: 'invalid export name' };
    const name = data.toString('utf8');
    const exp = this.catalog.lookup(name);
    if (!exp) return { replies: [], then: 'close', reason: `unknown export '${name}'` };
    const negotiated = this.settle(exp, false);
    const b = Buffer.alloc(this.noZeroes ? 10 : 134);
    b.writeBigUInt64BE(BigInt(exp.device.size), 0);
    b.writeUInt16BE(negotiated.flags, 8);
    return { replies: [b], then: 'transmission', negotiated };
  }

  private settle(exp: NbdExport, blockSizeRequested: boolean): Negotiated {
    return {
      export: exp,
      structured: this.structured,
      extended: this.extended,
      allocationContext: this.structured && this.metaExport === exp.name,
      enforceBlockSize: blockSizeRequested,
      flags: transmissionFlags(exp, this.structured),
    };
  }

  private list(data: Buffer): OptionOutcome {
    if (data.length !== 0) return this.reply(errorReply(OPT.LIST, REP.ERR_INVALID, 'NBD_OPT_LIST takes no data'));
    const replies = this.catalog.list().map((exp) => {
      const name = Buffer.from(exp.name, 'utf8');
      const desc = Buffer.from(exp.description ?? '', 'utf8');
      const p = Buffer.allocUnsafe(4 + name.length + desc.length);
      p.writeUInt32BE(name.length, 0);
      name.copy(p, 4);
      desc.copy(p, 4 + name.length);
      return optionReply(OPT.LIST, REP.SERVER, p);
    });
    replies.push(optionReply(OPT.LIST, REP.ACK));
    return { replies, then: 'continue' };
  }

  private infoOrGo(option: number, data: Buffer): OptionOutcome {
    const r = new OptionReader(data);
    const name = r.string();
    if (name === 'bad') return this.reply(errorReply(option, REP.ERR_INVALID, 'export name too long or contains NUL'));
    const count = name === null ? null : r.u16();
    if (name === null || count === null || data.length !== r.pos + 2 * count) {
      return this.reply(errorReply(option, REP.ERR_INVALID, 'malformed NBD_OPT_INFO/GO payload'));
    }
    const requests = new Set<number>();
    for (let i = 0; i < count; i++) requests.add(r.u16()!);
    const exp = this.catalog.lookup(name);
    if (!exp) return this.reply(errorReply(option, REP.ERR_UNKNOWN, `no export named '${name}'`));

    const negotiated = this.settle(exp, requests.has(INFO.BLOCK_SIZE));
    const replies: Buffer[] = [];
    const info = (type: number, body: Buffer) => {
      const p = Buffer.allocUnsafe(2 + body.length);
      p.writeUInt16BE(type, 0);
      body.copy(p, 2);
      replies.push(optionReply(option, REP.INFO, p));
    };
    const ex = Buffer.allocUnsafe(10);
    ex.writeBigUInt64BE(BigInt(exp.device.size), 0);
    ex.writeUInt16BE(negotiated.flags, 8);
    info(INFO.EXPORT, ex);
    if (requests.has(INFO.NAME)) info(INFO.NAME, Buffer.from(exp.name, 'utf8'));
    if (requests.has(INFO.DESCRIPTION) && exp.description) info(INFO.DESCRIPTION, Buffer.from(exp.description, 'utf8'));
    // Sent even unasked (allowed), but enforced only when the client asked and so knows it.
    const bs = blockSizes(exp);
    const b = Buffer.allocUnsafe(12);
    b.writeUInt32BE(bs.minimum, 0);
    b.writeUInt32BE(bs.preferred, 4);
    b.writeUInt32BE(bs.maximum, 8);
    info(INFO.BLOCK_SIZE, b);
    replies.push(optionReply(option, REP.ACK));
    if (option === OPT.INFO) return { replies, then: 'continue' };
    return { replies, then: 'transmission', negotiated };
  }

  private metaContext(option: number, data: Buffer): OptionOutcome {
    const set = option === OPT.SET_META_CONTEXT;
    if (set && !this.structured) {
      return this.reply(errorReply(option, REP.ERR_INVALID, 'NBD_OPT_SET_META_CONTEXT needs structured replies or extended headers first'));
    }
    const r = new OptionReader(data);
    const name = r.string();
    if (name === 'bad' || name === null) return this.reply(errorReply(option, REP.ERR_INVALID, 'malformed export name'));
    const count = r.u32();
    if (count === null) return this.reply(errorReply(option, REP.ERR_INVALID, 'missing query count'));
    const queries: string[] = [];
    for (let i = 0; i < count; i++) {
      const q = r.string();
      if (q === null || q === 'bad') return this.reply(errorReply(option, REP.ERR_INVALID, 'malformed meta context query'));
      queries.push(q);
    }
    if (!r.done) return this.reply(errorReply(option, REP.ERR_INVALID, 'trailing bytes after meta context queries'));
    if (!this.catalog.lookup(name)) return this.reply(errorReply(option, REP.ERR_UNKNOWN, `no export named '${name}'`));

    // LIST with no queries means "all"; a namespace query ("base:") lists what it holds.
    const matches = set
      ? queries.some((q) => q === BASE_ALLOCATION)
      : queries.length === 0 || queries.some((q) => q === BASE_ALLOCATION || q === 'base:');
    const replies: Buffer[] = [];
    if (set) this.metaExport = matches ? name : null;
    if (matches) {
      const ctx = Buffer.from(BASE_ALLOCATION, 'utf8');
      const p = Buffer.allocUnsafe(4 + ctx.length);
      p.writeUInt32BE(set ? BASE_ALLOCATION_ID : 0, 0);
      ctx.copy(p, 4);
      replies.push(optionReply(option, REP.META_CONTEXT, p));
    }
    replies.push(optionReply(option, REP.ACK));
    return { replies, then: 'continue' };
  }
}
