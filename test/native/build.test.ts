/**
 * Build test: the crate builds from scratch with `napi build --platform --release` and the
 * result loads under this Node; when the build cannot run, the install script still exits 0 and
 * sanbox runs on the TypeScript twin.
 */
import { describe, it, expect, vi, afterEach } from 'vitest';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const napi = join(repo, 'node_modules', '.bin', 'napi');
const haveCargo = spawnSync('cargo', ['--version']).status === 0;

describe('native build', () => {
  it.skipIf(!haveCargo)('a fresh build (own target dir, copy of the crate) produces an addon that loads', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sanbox-build-'));
    try {
      for (const f of ['Cargo.toml', 'Cargo.lock', 'package.json', 'src']) cpSync(join(repo, 'native', f), join(dir, f), { recursive: true });
      const r = spawnSync(napi, ['build', '--platform', '--release'], { cwd: dir, env: { ...process.env, CARGO_TARGET_DIR: join(dir, 'target') }, encoding: 'utf8', timeout: 120_000 });
      expect(r.status, r.stderr).toBe(0);
      const node = readdirSync(dir).find((f) => /^sanbox\..*\.node$/.test(f));
      expect(node).toBeDefined();
      const probe = `const m=require(${JSON.stringify(join(dir, node!))});` + `process.stdout.write(JSON.stringify([m.crc32c(Buffer.from('123456789')), m.crcImpl(), m.version()]))`;
      const p = spawnSync(process.execPath, ['-e', probe], { encoding: 'utf8' });
      expect(p.status, p.stderr).toBe(0);
      const [crc, impl] = JSON.parse(p.stdout) as [number, string];
      expect(crc).toBe(0xe3069283);
      expect(['sse4.2', 'table']).toContain(impl);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);

  it('install script exits 0 with SANBOX_SKIP_NATIVE=1', () => {
    const r = spawnSync(process.execPath, [join(repo, 'scripts', 'build-native.mjs')], { env: { ...process.env, SANBOX_SKIP_NATIVE: '1' }, encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/TypeScript twin/);
  });

  it('install script exits 0 when cargo is missing', () => {
    const r = spawnSync(process.execPath, [join(repo, 'scripts', 'build-native.mjs')], {
      env: { ...process.env, PATH: `${dirname(process.execPath)}:/bin`, CARGO_HOME: '/nonexistent', RUSTUP_HOME: '/nonexistent' },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.status).toBe(0);
    expect(r.stderr + r.stdout).toMatch(/build failed.*TypeScript twin/);
  }, 60_000);

  describe('without the addon', () => {
    const forced = process.env.SANBOX_FORCE_TS;
    afterEach(() => {
      delete process.env.SANBOX_NATIVE_PATH;
      if (forced !== undefined) process.env.SANBOX_FORCE_TS = forced;
      vi.resetModules();
    });
    it('falls back to the twin and says why', async () => {
      delete process.env.SANBOX_FORCE_TS;
      process.env.SANBOX_NATIVE_PATH = '/nonexistent/sanbox.node';
      vi.resetModules();
      const m = await import('../../src/native/index.js');
      const info = m.nativeInfo();
      expect(info).toMatchObject({ loaded: false, forcedTwin: false, crcImpl: 'ts' });
      expect(info.reason).toMatch(/not found/);
      expect(m.fileOps).toBeNull();
      expect(m.RegionBitmap.create(1 << 20, 4096).impl).toBe('ts');
      expect(m.Writelog.open({ capacity: 8192 }).impl).toBe('ts');
      expect(m.crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
    });
    it('SANBOX_FORCE_TS=1 forces the twin even when the addon exists', async () => {
      process.env.SANBOX_FORCE_TS = '1';
      vi.resetModules();
      const m = await import('../../src/native/index.js');
      expect(m.nativeInfo()).toMatchObject({ loaded: false, forcedTwin: true, crcImpl: 'ts' });
      expect(m.fileOps).toBeNull();
      expect(m.RegionBitmap.create(1 << 20, 4096).impl).toBe('ts');
      delete process.env.SANBOX_FORCE_TS;
    });
  });
});
