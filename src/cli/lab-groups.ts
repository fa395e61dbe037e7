/**
 * `sanbox up`, after the mirrors: the lab file's consistency groups. A group that does not exist
 * on its members' primary array (GET /v1/groups/NAME is 404 not-found) is created there at once:
 * the driver keeps a new group in bypass (changes go to the fracture logs) until every member's
 * secondaries are in sync, then starts journaling, so there is no need to wait for the initial
 * copies. A group that exists is compared with the file (members, mode, bounds, writelog,
 * throttles, intervals, freeze) and every difference is a warning; nothing is ever deleted or changed on
 * an existing group. Failures are warnings too: the lab keeps running and the operator finishes
 * with `sanbox group ...`.
 */
import { ApiClient, ClientError, type CreateGroupRequest, type GroupView } from '../control/index.js';
import { formatSize } from '../array/index.js';
import { withDefaults, type GroupAttributes } from '../replication/group/index.js';
import { LAB_SETUP_REQUEST_TIMEOUT_MS } from './common.js';
import type { Lab, LabGroup, LabState, LabStateGroup } from './lab.js';

export interface GroupSetupOptions {
  log: (line: string) => void;
  timeoutMs?: number;
}

export async function setupLabGroups(lab: Lab, state: LabState, opts: GroupSetupOptions): Promise<LabStateGroup[]> {
  const out: LabStateGroup[] = [];
  if (!lab.groups.length) return out;
  const clients = new Map<string, ApiClient>();
  for (const a of state.arrays) {
    if (a.api.url) clients.set(a.name, new ApiClient({ url: a.api.url, token: a.api.token, timeoutMs: opts.timeoutMs ?? LAB_SETUP_REQUEST_TIMEOUT_MS }));
  }
  for (const g of lab.groups) {
    const st: LabStateGroup = {
      name: g.name,
      primary: g.primary,
      members: g.members,
      secondaries: g.secondaries,
      mode: g.attributes.mode ?? 'asynchronous',
      status: 'failed',
      warnings: [],
    };
    out.push(st);
    const host = lab.arrays.find((a) => a.name === g.primary)?.host;
    const client = clients.get(g.primary);
    if (host || !client) {
      st.status = 'skipped';
      st.detail = host ? `its primary array ${g.primary} runs on ${host}: the lab there creates it` : `array ${g.primary} has no API`;
      continue;
    }
    let existing: GroupView | undefined;
    try {
      existing = await client.getGroup(g.name);
    } catch (e) {
      if (!(e instanceof ClientError && e.code === 'not-found')) {
        st.detail =
          e instanceof ClientError && e.code === 'no-mirror-driver'
            ? `array ${g.primary} runs no mirror driver (its remoteLink is not active), so the group was not created`
            : `cannot look it up on ${g.primary}: ${(e as Error).message}`;
        opts.log(`group ${g.name}: ${st.detail}`);
        continue;
      }
    }
    if (existing) {
      st.status = 'exists';
      st.mode = existing.record.mode;
      st.warnings = compareGroup(g, existing);
      for (const w of st.warnings) opts.log(`warning: group ${g.name}: ${w}`);
      continue;
    }
    let v: GroupView;
    try {
      v = await client.createGroup(createGroupRequest(g));
    } catch (e) {
      st.detail = `create on ${g.primary} failed: ${(e as Error).message}`;
      opts.log(`group ${g.name}: ${st.detail}`);
      continue;
    }
    st.status = 'created';
    st.detail = v.record.bypass.on ? 'in bypass until the members\' secondaries are in sync, then journaling' : undefined;
    if (st.detail === undefined) delete st.detail;
    opts.log(`group ${g.name} created on ${g.primary} (${g.members.join(', ')}; ${v.record.mode})${v.record.bypass.on ? ': in bypass until the secondaries are in sync' : ''}`);
  }
  return out;
}

export function createGroupRequest(g: LabGroup): CreateGroupRequest {
  return { name: g.name, members: g.members, ...(Object.keys(g.attributes).length ? { attributes: g.attributes as CreateGroupRequest['attributes'] } : {}) };
}

/** JSON with sorted keys, to compare records whatever their key order. */
function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => (x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => a.localeCompare(b))) : x));
}

const ms = (n: number) => (n % 1000 === 0 ? `${n / 1000}s` : `${n}ms`);

/** Differences between the lab file's group and the one on the array (warnings). */
export function compareGroup(g: LabGroup, v: GroupView): string[] {
  const w: string[] = [];
  const want: GroupAttributes = withDefaults(g.attributes);
  const r = v.record;
  if (v.role !== 'primary') w.push(`${g.primary} holds it as a secondary now (promoted elsewhere since?); the lab file says its primary array is ${g.primary}`);
  const have = v.members.map((m) => m.name);
  if (canonical(have) !== canonical(g.members)) {
    const sameSet = have.length === g.members.length && g.members.every((m) => have.includes(m));
    w.push(sameSet ? `its members are in another order (${have.join(', ')}; the lab file: ${g.members.join(', ')})` : `its members are ${have.join(', ') || 'none'}, the lab file says ${g.members.join(', ')}`);
  }
  if (r.mode !== want.mode) w.push(`its mode is ${r.mode}, the lab file says ${want.mode} (sanbox group mode ${g.name} ${want.mode})`);
  if (g.attributes.nearSync || want.mode === 'near-synchronous') {
    const a = r.nearSync;
    const b = want.nearSync;
    if (a.maxEntries !== b.maxEntries || a.maxBytes !== b.maxBytes || a.lowEntries !== b.lowEntries || a.lowBytes !== b.lowBytes) {
      const t = (x: typeof a) => `maxEntries ${x.maxEntries}, maxBytes ${formatSize(x.maxBytes)}, lowEntries ${x.lowEntries}, lowBytes ${formatSize(x.lowBytes)}`;
      w.push(`its near-synchronous bounds are ${t(a)}; the lab file says ${t(b)}`);
    }
  }
  const wa = r.writelog;
  const wb = want.writelog;
  if (wa.capacity !== wb.capacity || wa.extensions !== wb.extensions || wa.extensionCapacity !== wb.extensionCapacity || wa.extendAtPercent !== wb.extendAtPercent) {
    const t = (x: typeof wa) => `${formatSize(x.capacity)}, ${x.extensions} extension${x.extensions === 1 ? '' : 's'} of ${formatSize(x.extensionCapacity)}, extend at ${x.extendAtPercent}%`;
    w.push(`its writelog is ${t(wa)}; the lab file says ${t(wb)} (fixed at create: delete and create the group to change it)`);
  }
  if (canonical(r.throttles) !== canonical(want.throttles)) w.push(`its throttles differ from the lab file's (${r.throttles.length} on the array, ${want.throttles.length} in the file; sanbox group throttle ${g.name} --file FILE)`);
  if (r.throttleEveryMs !== want.throttleEveryMs) w.push(`it evaluates throttles every ${ms(r.throttleEveryMs)}, the lab file says ${ms(want.throttleEveryMs)}`);
  if (r.perfEveryMs !== want.perfEveryMs) w.push(`it writes performance records every ${ms(r.perfEveryMs)}, the lab file says ${ms(want.perfEveryMs)}`);
  if ((r.freeze ?? 'off') !== want.freeze) w.push(`its freeze is ${r.freeze ?? 'off'}, the lab file says ${want.freeze} (sanbox group set ${g.name} --freeze ${want.freeze})`);
  if (r.perfMaxBytes !== want.perfMaxBytes) w.push(`its performance file limit is ${formatSize(r.perfMaxBytes)}, the lab file says ${formatSize(want.perfMaxBytes)}`);
  return w;
}
