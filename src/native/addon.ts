/**
 * Loads the Rust addon (native/sanbox.<platform>.node, built by scripts/build-native.mjs with
 * `napi build --platform --release`; SANBOX_NATIVE_PATH names another file). Never throws: when the addon is missing, fails to load,
 * lacks a function, or SANBOX_FORCE_TS=1 is set, `addon` is null and the TypeScript twin is
 * used everywhere; `loadInfo` says why.
 */
import { createRequire } from 'node:module';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Raw addon surface (see native/src/lib.rs). Handles are opaque externals. */
export interface NativeAddon {
  version(): string;
  crcImpl(): 'sse4.2' | 'table';
  crc32c(data: Uint8Array, seed?: number): number;
  shaImpl(): 'sha-ni' | 'portable';
  hmacNew(key: Uint8Array, tagBytes: number, portable: boolean): NativeHandle;
  /** the MAC of the pieces (at most 5) into out[offset .. offset + tagBytes] */
  hmacMac(h: NativeHandle, out: Uint8Array, offset: number, ...pieces: Uint8Array[]): void;
  /** constant-time: whether tag (tagBytes long) is the MAC of the pieces (at most 6) */
  hmacVerify(h: NativeHandle, tag: Uint8Array, ...pieces: Uint8Array[]): boolean;
  punchHole(fd: number, offset: number, length: number): void;
  seekData(fd: number, offset: number): number;
  seekHole(fd: number, offset: number): number;
  bmNew(lunSize: number, regionSize: number): NativeHandle;
  bmMark(h: NativeHandle, off: number, len: number): void;
  bmClear(h: NativeHandle, off: number, len: number): void;
  bmMarkMany(h: NativeHandle, ranges: Float64Array): void;
  bmClearMany(h: NativeHandle, ranges: Float64Array): void;
  bmTest(h: NativeHandle, off: number, len: number): boolean;
  bmCount(h: NativeHandle): number;
  bmCountIn(h: NativeHandle, off: number, len: number): number;
  bmDirtyBytes(h: NativeHandle): number;
  bmRuns(h: NativeHandle, from: number, max: number): Float64Array;
  bmUnion(h: NativeHandle, o: NativeHandle): void;
  bmCopy(h: NativeHandle, o: NativeHandle): void;
  bmClearAll(h: NativeHandle): void;
  bmSerialize(h: NativeHandle, generation: number): Buffer;
  bmLoad(b: Uint8Array): NativeHandle;
  rgNew(fd: number, base: number, cap: number, epoch: number): NativeHandle;
  rgReset(h: NativeHandle, head: number, nextLocal: number): void;
  rgAppend(h: NativeHandle, firstSeq: number, meta: Float64Array, datas: Uint8Array[]): number;
  rgRead(h: NativeHandle, from: number, maxBytes: number, maxCount: number, verify: boolean): Buffer;
  rgAck(h: NativeHandle, seq: number): number;
  rgCommitTail(h: NativeHandle, v: number): void;
  rgTruncateAfter(h: NativeHandle, seq: number): void;
  rgRecover(h: NativeHandle, tailV: number, tailLocal: number): number;
  rgStats(h: NativeHandle): Float64Array;
  rgNeed(h: NativeHandle, len: number): number;
}
export type NativeHandle = { readonly __native: unique symbol };

const REQUIRED: (keyof NativeAddon)[] = [
  'version', 'crcImpl', 'crc32c', 'shaImpl', 'hmacNew', 'hmacMac', 'hmacVerify', 'punchHole', 'seekData', 'seekHole', 'bmNew', 'bmMarkMany', 'bmRuns',
  'bmSerialize', 'bmLoad', 'rgNew', 'rgAppend', 'rgRead', 'rgRecover', 'rgStats',
];

export interface LoadInfo {
  addon: NativeAddon | null;
  forcedTwin: boolean;
  path?: string;
  version?: string;
  reason?: string;
}

/** Directory holding the crate (and the built .node file): ../../native from src/ or dist/. */
export const nativeDir = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'native');

function candidates(): string[] {
  // An explicit path is the only candidate (tests use a missing one to simulate a failed build).
  if (process.env.SANBOX_NATIVE_PATH) return [resolve(process.env.SANBOX_NATIVE_PATH)];
  const out: string[] = [];
  const pref = [`sanbox.${process.platform}-${process.arch}-gnu.node`, `sanbox.${process.platform}-${process.arch}.node`, 'sanbox.node'];
  for (const p of pref) out.push(join(nativeDir, p));
  try {
    for (const f of readdirSync(nativeDir)) if (/^sanbox\..*\.node$/.test(f)) out.push(join(nativeDir, f));
  } catch {
    /* no native dir */
  }
  return [...new Set(out)];
}

/** RFC 4231 test case 2, in two pieces: a miscompiled SHA-256 path must not sign link frames. */
function hmacSelfTest(a: NativeAddon): boolean {
  const out = Buffer.alloc(32);
  a.hmacMac(a.hmacNew(Buffer.from('Jefe'), 32, false), out, 0, Buffer.from('what do ya want '), Buffer.from('for nothing?'));
  return out.toString('hex') === '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843';
}

function load(): LoadInfo {
  if (process.env.SANBOX_FORCE_TS === '1') return { addon: null, forcedTwin: true, reason: 'SANBOX_FORCE_TS=1' };
  const require = createRequire(import.meta.url);
  const errors: string[] = [];
  for (const p of candidates()) {
    if (!existsSync(p)) {
      if (process.env.SANBOX_NATIVE_PATH) errors.push(`${p}: not found`);
      continue;
    }
    try {
      const a = require(p) as Partial<NativeAddon>;
      const missing = REQUIRED.filter((k) => typeof a[k] !== 'function');
      if (missing.length) {
        errors.push(`${p}: missing ${missing.join(', ')} (stale build?)`);
        continue;
      }
      const addon = a as NativeAddon;
      if (addon.crc32c(Buffer.from('123456789')) !== 0xe3069283) {
        errors.push(`${p}: CRC32C self-test failed`);
        continue;
      }
      if (!hmacSelfTest(addon)) {
        errors.push(`${p}: HMAC-SHA256 self-test failed (${addon.shaImpl()})`);
        continue;
      }
      return { addon, forcedTwin: false, path: p, version: addon.version() };
    } catch (e) {
      errors.push(`${p}: ${(e as Error).message}`);
    }
  }
  return {
    addon: null,
    forcedTwin: false,
    reason: errors.length ? errors.join('; ') : `no sanbox.*.node in ${nativeDir} (native build skipped or failed)`,
  };
}

export const loadInfo: LoadInfo = load();
export const addon: NativeAddon | null = loadInfo.addon;
