// Small waiting and networking helpers shared by the launchers and the tests.
import { freePorts } from '../../src/scenario/runner/lab.js';

/**
 * A TCP port free on 127.0.0.1 right now, below the kernel's ephemeral range: an ephemeral one
 * (listen on port 0) could be handed to another test's outgoing connection before we bind it
 * (EADDRINUSE seen under load), a port below 32768 only to another listener.
 */
export async function freePort(): Promise<number> {
  return (await freePorts(1))[0]!;
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
