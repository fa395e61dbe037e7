/** A site automation controller's configuration, written by `sanbox up` (src/cli/automation/lab.ts). */
import type { ResourceGroupSpec } from '../rg/types.js';

export interface ControllerConfig {
  /** the running lab whose state file names the arrays' endpoints */
  lab: string;
  site: string;
  peer: { site: string; url: string };
  listen: { host: string; port: number };
  /** bearer token of this controller's API and of its peer's */
  secret: string;
  declareLostAfterMs: number;
  resourceGroups: ResourceGroupSpec[];
  /** the step log, the host resources' logs and pid files */
  stateDir: string;
  /** prepended to PATH for the host resources' commands (holds a `sanbox` that runs this build) */
  binDir: string;
}

export function checkConfig(c: ControllerConfig): ControllerConfig {
  const missing = ['lab', 'site', 'secret', 'stateDir', 'binDir'].filter((k) => typeof (c as unknown as Record<string, unknown>)[k] !== 'string');
  if (missing.length) throw new Error(`controller configuration: missing ${missing.join(', ')}`);
  if (!c.peer || c.peer.site === c.site) throw new Error('controller configuration: the peer must be the other site');
  if (!Array.isArray(c.resourceGroups)) throw new Error('controller configuration: resourceGroups must be a list');
  return c;
}
