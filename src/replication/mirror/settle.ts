import { ignoreOnClose } from '../../errors/index.js';

/**
 * Awaits `p` on a shutdown path, whatever its outcome: the failure is ignored on purpose
 * (ignoreOnClose prints it under SANBOX_PARANOID / SANBOX_DEBUG), the close goes on.
 */
export async function waitOnClose(p: Promise<unknown> | undefined, why: string): Promise<void> {
  if (!p) return;
  ignoreOnClose(p, why);
  await settled(p);
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
