/**
 * The option haggling of one NBD session, between the client flags and the end of the handshake:
 * options are cut out of the session's input (oversized ones thrown away as they arrive, then
 * refused), each is handed to the Negotiation, and its replies are queued. It runs once per
 * connection, never per request, so it lives apart from session.ts, which acts on how the
 * haggling ends (transmission, STARTTLS, close or abort).
 */
import type { ByteQueue } from '../wire/index.js';
import { IHAVEOPT_HI, IHAVEOPT_LO, LIMITS, OPT, REP } from './constants.js';
import { optionReply, type Negotiation, type OptionOutcome } from './negotiation.js';

/**
 * Where `OptionPhase.pump` stopped: it needs more input, the connection must be dropped, or an
 * option ended the haggling (the Negotiation's outcome; its replies are queued already).
 */
export type OptionStep = { then: 'wait' } | { then: 'abort'; reason: string } | Exclude<OptionOutcome, { then: 'continue' }>;

const WAIT: OptionStep = { then: 'wait' };

export class OptionPhase {
  /** Option data still to be thrown away before answering ERR_TOO_BIG. */
  private discardOptionLeft = 0;
  private discardOption = 0;

  constructor(
    private readonly negotiation: Negotiation,
    private readonly send: (reply: Buffer) => void,
  ) {}

  /** Handles the options queued in `q`, as far as they have arrived. */
  pump(q: ByteQueue): OptionStep {
    for (;;) {
      if (this.discardOptionLeft > 0) {
        this.discardOptionLeft -= q.skip(this.discardOptionLeft);
        if (this.discardOptionLeft > 0) return WAIT;
        // FORCEDTLS: before STARTTLS every option but STARTTLS and ABORT gets TLS_REQD, big ones too.
        const tlsReqd = this.negotiation.tlsRequired && this.discardOption !== OPT.STARTTLS && this.discardOption !== OPT.ABORT;
        this.send(optionReply(this.discardOption, tlsReqd ? REP.ERR_TLS_REQD : REP.ERR_TOO_BIG, Buffer.from(tlsReqd ? 'TLS is required: send NBD_OPT_STARTTLS first' : 'option data too large')));
        continue;
      }
      if (q.length < 16) return WAIT;
      if (q.readUInt32BE(0) !== IHAVEOPT_HI || q.readUInt32BE(4) !== IHAVEOPT_LO) return { then: 'abort', reason: 'bad option magic' };
      const option = q.readUInt32BE(8);
      const length = q.readUInt32BE(12);
      if (length > LIMITS.MAX_OPTION_DATA) {
        if (option === OPT.EXPORT_NAME || length > LIMITS.MAX_OPTION_DISCARD) return { then: 'abort', reason: `option ${option} with ${length} bytes of data` };
        // Throw the data away as it arrives, then refuse: the connection stays usable.
        q.skip(16);
        this.discardOption = option;
        this.discardOptionLeft = length;
        continue;
      }
      if (q.length < 16 + length) return WAIT;
      q.skip(16);
      const data = Buffer.from(q.take(length)); // may be a view of the shared read buffer
      const outcome = this.negotiation.handle(option, data);
      for (const r of outcome.replies) this.send(r);
      if (outcome.then !== 'continue') return outcome;
    }
  }
}
