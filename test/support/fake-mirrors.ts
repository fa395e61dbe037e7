// A hand-written MirrorControl that records every call, for tests of the API layer and the CLI.
import { MirrorError, type MirrorControl, type MirrorRegionMap, type MirrorView, type VerifyReport } from '../../src/replication/mirror/types.js';
import { DEFAULT_ATTRIBUTES, type MirrorImage } from '../../src/replication/state/index.js';

export interface Call {
  op: string;
  args: unknown[];
}

export function image(array: string, lun: number, over: Partial<MirrorImage> = {}): MirrorImage {
  return {
    imageId: `${array}:${lun}`,
    array,
    lun,
    size: 64 << 20,
    role: 'secondary',
    state: 'SYNCHRONIZED',
    epoch: 0,
    reachability: 'REACHABLE',
    fractured: false,
    fractureReason: null,
    recoveryPolicy: 'auto',
    syncRate: null,
    syncProgress: null,
    ...over,
  };
}

export function view(name = 'm0', over: Partial<MirrorView> = {}): MirrorView {
  const primary = image('alpha', 0, { role: 'primary', state: null, epoch: 1 });
  const secondary = image('bravo', 0, {
    state: 'SYNCHRONIZING',
    syncProgress: { bytesDone: 12.5 * 2 ** 20, bytesTotal: 64 << 20 },
  });
  return {
    record: {
      format: 'sanbox.mirror-db',
      version: 1,
      mirrorId: `id-${name}`,
      generation: 3,
      state: 'ACTIVE',
      epoch: 1,
      regionSize: 65536,
      name,
      ...DEFAULT_ATTRIBUTES,
      images: [primary, secondary],
    },
    local: { imageId: 'alpha:0', role: 'primary', lun: 0, lunName: 'disk0' },
    images: [
      { ...primary, link: 'local', fractureLog: null, resync: null, recordGeneration: 3 },
      {
        ...secondary,
        link: 'connected',
        recordGeneration: 3,
        fractureLog: { regions: 3, bytes: 196608 },
        resync: { full: false, reason: 'fracture log', bytesDone: 12.5 * 2 ** 20, bytesTotal: 64 << 20, rate: 30 << 20, eta: 2, startedAt: '2026-01-01T00:00:00.000Z' },
      },
    ],
    writeIntentLog: { regions: 1, bytes: 65536, inFlight: 0 },
    splitBrain: false,
    ...over,
  };
}

/** Records calls; `fail` makes the next call throw that error. */
export class FakeMirrors implements MirrorControl {
  calls: Call[] = [];
  fail: Error | undefined;
  views = new Map<string, MirrorView>([['m0', view('m0')]]);
  verifyResult: VerifyReport = {
    mirrorId: 'id-m0',
    imageId: 'bravo:0',
    regionSize: 65536,
    regionsCompared: 1024,
    bytesCompared: 64 << 20,
    mismatched: [],
    identical: true,
    result: 'identical',
    skipped: 0,
  };

  private rec(op: string, ...args: unknown[]): void {
    this.calls.push({ op, args });
    const f = this.fail;
    if (f) {
      this.fail = undefined;
      throw f;
    }
  }
  private one(ref: string): MirrorView {
    const v = this.views.get(ref) ?? [...this.views.values()].find((x) => x.record.mirrorId === ref);
    if (!v) throw new MirrorError('not-found', `no mirror ${JSON.stringify(ref)}`);
    return v;
  }
  list(): MirrorView[] {
    this.rec('list');
    return [...this.views.values()];
  }
  get(ref: string): MirrorView {
    this.rec('get', ref);
    return this.one(ref);
  }
  regionMap(ref: string, buckets: number): MirrorRegionMap {
    this.rec('regionMap', ref, buckets);
    this.one(ref);
    return { mirror: ref, lunSize: 64 << 20, bucketBytes: (64 << 20) / buckets, writeIntentLog: { regionSize: 1 << 20, shares: [0] }, images: [{ imageId: 'bravo:0', array: 'bravo', fractureLog: null }] };
  }
  async create(p: Parameters<MirrorControl['create']>[0]): Promise<MirrorView> {
    this.rec('create', p);
    const name = p.name ?? String(p.lun);
    if (this.views.has(name)) throw new MirrorError('exists', `mirror ${name} exists`);
    const v = view(name);
    this.views.set(name, v);
    return v;
  }
  async addSecondary(ref: string, p: Parameters<MirrorControl['addSecondary']>[1]): Promise<MirrorView> {
    this.rec('addSecondary', ref, p);
    return this.one(ref);
  }
  async removeSecondary(ref: string, img: string, p?: { force?: boolean }): Promise<MirrorView> {
    this.rec('removeSecondary', ref, img, p);
    return this.one(ref);
  }
  async promote(ref: string, p?: { force?: boolean }): Promise<MirrorView> {
    this.rec('promote', ref, p);
    return this.one(ref);
  }
  async synchronize(ref: string, img?: string, p?: { force?: boolean }): Promise<MirrorView> {
    this.rec('synchronize', ref, img, p);
    return this.one(ref);
  }
  async fracture(ref: string, img?: string): Promise<MirrorView> {
    this.rec('fracture', ref, img);
    return this.one(ref);
  }
  async activate(ref: string): Promise<MirrorView> {
    this.rec('activate', ref);
    return this.one(ref);
  }
  async deactivate(ref: string, p?: { force?: boolean }): Promise<MirrorView> {
    this.rec('deactivate', ref, p);
    return this.one(ref);
  }
  async destroy(ref: string): Promise<void> {
    this.rec('destroy', ref);
    this.one(ref);
    this.views.delete(ref);
  }
  async setAttributes(ref: string, p: Parameters<MirrorControl['setAttributes']>[1]): Promise<MirrorView> {
    this.rec('setAttributes', ref, p);
    return this.one(ref);
  }
  async verify(ref: string, img?: string): Promise<VerifyReport> {
    this.rec('verify', ref, img);
    this.one(ref);
    return this.verifyResult;
  }
  async resolveSplitBrain(ref: string, p: { survivor: string }): Promise<MirrorView> {
    this.rec('resolveSplitBrain', ref, p);
    return this.one(ref);
  }
}
