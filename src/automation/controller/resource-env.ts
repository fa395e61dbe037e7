/**
 * What a host resource's commands see: the lab, the site, the group, a PATH whose `sanbox` is
 * this build, the lab file's directory (`SANBOX_LAB_DIR`: scripts next to it), and the NBD URI of every mirror of the group's volume sets at this site
 * (`SANBOX_URI_<MIRROR>`, upper case, `-` as `_`): the image that is primary here once the
 * storage steps are done.
 */
import { dirname } from 'node:path';
import type { ResourceGroupSpec } from '../rg/types.js';
import { siteOf } from '../client.js';
import type { ControllerConfig } from './config.js';
import { labState } from './storage.js';

const envName = (mirror: string): string => `SANBOX_URI_${mirror.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;

export async function resourceEnv(cfg: ControllerConfig, rg: ResourceGroupSpec): Promise<Record<string, string>> {
  const lab = await labState(cfg.lab);
  const env: Record<string, string> = { SANBOX_LAB: cfg.lab, SANBOX_SITE: cfg.site, SANBOX_RG: rg.name, SANBOX_LAB_DIR: dirname(lab.file), PATH: `${cfg.binDir}:${process.env.PATH ?? '/usr/bin:/bin'}` };
  const mirrors = rg.volumeSets.flatMap((s) => lab.groups?.find((g) => g.name === s)?.members ?? [s]);
  for (const name of mirrors) {
    const m = lab.mirrors?.find((x) => x.name === name);
    const ref = m && [m.primary, ...m.secondaries].find((r) => siteOf(lab, r.split(':')[0]!) === cfg.site);
    if (!ref) continue;
    const [arrayName, lun] = [ref.slice(0, ref.indexOf(':')), ref.slice(ref.indexOf(':') + 1)];
    const a = lab.arrays.find((x) => x.name === arrayName);
    if (a) env[envName(name)] = `${a.nbd.tls ? 'nbds' : 'nbd'}://${a.nbd.host}:${a.nbd.port}/${encodeURIComponent(lun)}`;
  }
  return env;
}
