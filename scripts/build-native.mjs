// Builds the Rust addon with @napi-rs/cli. Never fails the install: without cargo (or when
// SANBOX_SKIP_NATIVE=1) sanbox runs on the TypeScript twin and `sanbox doctor` says so.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const native = join(root, 'native');
if (process.env.SANBOX_SKIP_NATIVE === '1') {
  console.log('[sanbox] SANBOX_SKIP_NATIVE=1: not building the native addon (TypeScript twin in use)');
  process.exit(0);
}
if (!existsSync(join(native, 'Cargo.toml'))) {
  console.log('[sanbox] no native/Cargo.toml: TypeScript twin in use');
  process.exit(0);
}
const napi = join(root, 'node_modules', '.bin', 'napi');
const cmd = existsSync(napi) ? napi : 'npx';
const args = existsSync(napi) ? ['build', '--platform', '--release'] : ['napi', 'build', '--platform', '--release'];
const r = spawnSync(cmd, args, { cwd: native, stdio: 'inherit' });
if (r.status !== 0) {
  console.warn(`[sanbox] native addon build failed (${r.error?.message ?? 'exit ' + r.status}); sanbox will use the TypeScript twin`);
}
process.exit(0);
