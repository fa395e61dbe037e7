/**
 * When a controller declares the other site lost: one pure decision with a stable reason. Lost
 * means silent on every path the controller has to it (its controller and every array of it)
 * for the whole `declareLostAfterMs`; one answer anywhere keeps it alive (a partition of the
 * controllers' channel alone is not a disaster, and a forced promote then would make two primaries).
 */
export interface SiteLossInput {
  /** ms since the peer controller last answered (since start when never) */
  peerSilentMs: number;
  /** ms since any array of that site last answered (since start when never) */
  arraysSilentMs: number;
  declareLostAfterMs: number;
  alreadyDeclared: boolean;
}

export type SiteLossReason = 'already-declared' | 'peer-answers' | 'arrays-answer' | 'silent';

export interface SiteLossDecision {
  declare: boolean;
  reason: SiteLossReason;
  detail: string;
}

export function siteLossDecision(i: SiteLossInput): SiteLossDecision {
  const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  if (i.alreadyDeclared) return { declare: false, reason: 'already-declared', detail: 'declared lost already' };
  if (i.peerSilentMs < i.declareLostAfterMs) return { declare: false, reason: 'peer-answers', detail: `its controller answered ${s(i.peerSilentMs)} ago` };
  if (i.arraysSilentMs < i.declareLostAfterMs) return { declare: false, reason: 'arrays-answer', detail: `its controller is silent for ${s(i.peerSilentMs)} but an array answered ${s(i.arraysSilentMs)} ago` };
  return { declare: true, reason: 'silent', detail: `its controller silent for ${s(i.peerSilentMs)} and its arrays for ${s(i.arraysSilentMs)} (limit ${s(i.declareLostAfterMs)})` };
}
