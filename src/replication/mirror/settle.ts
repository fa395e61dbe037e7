import { ignoreOnClose } from '../../errors/index.js';

/** ignoreOnClose (src/errors) for a shutdown step that may not exist (no listener, no resync running). */
export async function waitOnClose(p: Promise<unknown> | undefined, why: string): Promise<void> {
  if (p) await ignoreOnClose(p, why);
}

/**
 * Resolves once `p` settled. For an ordering chain only: the outcome of `p` goes to whoever
 * awaits `p` itself (the caller of `exclusive`), the chain just waits for its turn.
 */
export function settled(p: Promise<unknown>): Promise<void> {
  return p.then(
    () => undefined,
    () => undefined,
  );
}
