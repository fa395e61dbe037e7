// Small waiting and networking helpers shared by the launchers and the tests.
import { createServer, type AddressInfo } from 'node:net';

/** A TCP port free on 127.0.0.1 right now (bound, read, closed). */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const p = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

/** Polls `fn` every `intervalMs` until it returns true; throws after `ms`. */
export async function until(fn: () => boolean | Promise<boolean>, ms = 20_000, what = 'condition', intervalMs = 20): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}
