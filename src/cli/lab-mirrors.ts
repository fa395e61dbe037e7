/**
 * `sanbox up`, once every array is up: the lab file's mirrors. A mirror that does not exist on
 * its primary array (GET /v1/mirrors/NAME is 404 not-found) is created there and its secondaries
 * are added; one that exists is compared with the file (primary LUN, secondaries) and every
 * difference is a warning. Nothing is ever destroyed or changed on an existing mirror. Failures
 * are warnings too: the lab keeps running and the operator finishes with `sanbox mirror ...`.
 */
import { ApiClient, ClientError, type CreateMirrorRequest, type LunView } from '../control/index.js';
import type { MirrorView } from '../replication/mirror/types.js';
import { LAB_SETUP_REQUEST_TIMEOUT_MS, sleep } from './common.js';
import type { Lab, LabLunRef, LabMirror, LabState, LabStateMirror } from './lab.js';
import { resyncText } from './mirror-render.js';

const ref = (r: LabLunRef) => `${r.array}:${r.lun}`;

/** How long `up` shows the initial synchronizations by default (it never waits for them to finish). */
const SYNC_PROGRESS_MS = 1500;
/** The first look at the synchronizations comes sooner, then one every PROGRESS_LOOK_MS. */
const FIRST_PROGRESS_LOOK_MS = 300;
const PROGRESS_LOOK_MS = 600;

export interface MirrorSetupOptions {
  log: (line: string) => void;
  /** How long to watch the initial synchronizations before `up` returns (default 1500 ms). */
  progressMs?: number;
  timeoutMs?: number;
}

export async function setupLabMirrors(lab: Lab, state: LabState, opts: MirrorSetupOptions): Promise<LabStateMirror[]> {
  const out: LabStateMirror[] = [];
  if (!lab.mirrors.length) return out;
  const clients = new Map<string, ApiClient>();
  for (const a of state.arrays) {
    if (a.api.url) clients.set(a.name, new ApiClient({ url: a.api.url, token: a.api.token, timeoutMs: opts.timeoutMs ?? LAB_SETUP_REQUEST_TIMEOUT_MS }));
  }
  /** LUN id of a lab LUN reference (looked up on its array; undefined when unknown). */
  const lunIds = new Map<string, number | undefined>();
  const lunId = async (r: LabLunRef): Promise<number | undefined> => {
    if (typeof r.lun === 'number') return r.lun;
    const key = ref(r);
    if (!lunIds.has(key)) {
      const c = clients.get(r.array);
      let id: number | undefined;
      if (c) id = await c.request<{ lun: LunView }>('GET', `/v1/luns/${encodeURIComponent(r.lun)}`).then(
          (x) => x.lun.id,
          () => undefined, // not there (or its array does not answer): unknown, and the create step says why
        );
      lunIds.set(key, id);
    }
    return lunIds.get(key);
  };

  const created: { m: LabStateMirror; client: ApiClient }[] = [];
  /** Per mirror: array -> `array:lun` as the lab file names the image. */
  const names = new Map(lab.mirrors.map((m) => [m.name, new Map(m.secondaries.map((s) => [s.array, ref(s)]))]));
  for (const m of lab.mirrors) {
    const st: LabStateMirror = { name: m.name, primary: ref(m.primary), secondaries: m.secondaries.map(ref), status: 'failed', warnings: [] };
    out.push(st);
    const host = lab.arrays.find((a) => a.name === m.primary.array)?.host;
    const client = clients.get(m.primary.array);
    if (host || !client) {
      st.status = 'skipped';
      st.detail = host ? `its primary array ${m.primary.array} runs on ${host}: the lab there creates it` : `array ${m.primary.array} has no API`;
      continue;
    }
    let existing: MirrorView | undefined;
    try {
      existing = await client.getMirror(m.name);
    } catch (e) {
      if (!(e instanceof ClientError && e.code === 'not-found')) {
        st.detail =
          e instanceof ClientError && e.code === 'no-mirror-driver'
            ? `array ${m.primary.array} runs no mirror driver (its remoteLink is not active), so the mirror was not created`
            : `cannot look it up on ${m.primary.array}: ${(e as Error).message}`;
        opts.log(`mirror ${m.name}: ${st.detail}`);
        continue;
      }
    }
    if (existing) {
      st.status = 'exists';
      st.warnings = await compare(m, existing, lunId);
      for (const w of st.warnings) opts.log(`warning: mirror ${m.name}: ${w}`);
      continue;
    }
    try {
      await client.createMirror(createRequest(m));
    } catch (e) {
      st.detail = `create on ${m.primary.array} failed: ${(e as Error).message}`;
      opts.log(`mirror ${m.name}: ${st.detail}`);
      continue;
    }
    st.status = 'created';
    opts.log(`mirror ${m.name} created on ${ref(m.primary)}`);
    for (const s of m.secondaries) {
      try {
        await client.addSecondary(m.name, {
          array: s.array,
          lun: s.lun,
          ...(s.synchronized ? { synchronized: true } : {}),
          ...(s.recoveryPolicy ? { recoveryPolicy: s.recoveryPolicy } : {}),
          ...(s.syncRate !== undefined ? { syncRate: s.syncRate } : {}),
        });
        opts.log(`mirror ${m.name}: secondary ${ref(s)} added${s.synchronized ? ' (declared synchronized)' : ''}`);
      } catch (e) {
        const w = `secondary ${ref(s)} could not be added: ${(e as Error).message} (retry: sanbox mirror add-secondary ${m.name} --to ${ref(s)}${lab.name !== 'default' ? ` --lab ${lab.name}` : ''})`;
        st.warnings.push(w);
        opts.log(`warning: mirror ${m.name}: ${w}`);
      }
    }
    created.push({ m: st, client });
  }

  // A short look at the initial synchronizations (never waits for them to finish).
  const deadline = Date.now() + (opts.progressMs ?? SYNC_PROGRESS_MS);
  for (let round = 0; created.length; round++) {
    await sleep(round === 0 ? FIRST_PROGRESS_LOOK_MS : PROGRESS_LOOK_MS);
    const last = Date.now() >= deadline;
    for (const { m, client } of created) {
      try {
        const v = await client.getMirror(m.name);
        m.progress = progressLines(v, names.get(m.name));
        if (!last) for (const p of m.progress) opts.log(`mirror ${m.name}: ${p}`);
      } catch {
        /* no answer this round: its progress is shown as it was */
      }
    }
    if (last) break;
  }
  return out;
}

function createRequest(m: LabMirror): CreateMirrorRequest {
  const attributes: NonNullable<CreateMirrorRequest['attributes']> = { writePolicy: m.writePolicy };
  if (m.syncRate !== undefined) attributes.syncRate = m.syncRate;
  if (m.activationPolicy !== undefined) attributes.activationPolicy = m.activationPolicy;
  if (m.minImagesRequired !== undefined) attributes.minImagesRequired = m.minImagesRequired;
  if (m.maxMissingImages !== undefined) attributes.maxMissingImages = m.maxMissingImages;
  if (m.allowSecondaryReads !== undefined) attributes.allowSecondaryReads = m.allowSecondaryReads;
  if (m.syncPriority !== undefined) attributes.syncPriority = m.syncPriority;
  if (m.protectResync !== undefined) attributes.protectResync = m.protectResync;
  return { lun: m.primary.lun, name: m.name, ...(m.regionSize !== undefined ? { regionSize: m.regionSize } : {}), attributes };
}

/** `bravo:0 SYNCHRONIZING 12.5 MiB of 1 GiB, 30 MiB/s, ETA 33 s (full: ...)` per secondary. */
export function progressLines(v: MirrorView, names: Map<string, string> = new Map()): string[] {
  return v.images
    .filter((i) => i.role === 'secondary')
    .map((i) => `${names.get(i.array) ?? i.imageId} ${i.state ?? '-'}${i.fractured ? ` fractured (${i.fractureReason ?? '?'})` : ''}${i.reachability === 'UNREACHABLE' ? ' unreachable' : ''}${i.resync ? ` ${resyncText(i.resync)}` : ''}`);
}

/** Differences between the lab file's mirror and the one on the array (warnings). */
async function compare(m: LabMirror, v: MirrorView, lunId: (r: LabLunRef) => Promise<number | undefined>): Promise<string[]> {
  const w: string[] = [];
  const primary = v.record.images.find((i) => i.role === 'primary');
  if (v.local.role !== 'primary') {
    w.push(`${m.primary.array} holds a secondary image of it now (primary: ${primary?.imageId ?? 'none'}; promoted since?); the lab file says primary ${ref(m.primary)}`);
  } else {
    const same = typeof m.primary.lun === 'number' ? v.local.lun === m.primary.lun : v.local.lunName === m.primary.lun;
    if (!same) w.push(`its primary image is ${m.primary.array}:${v.local.lunName} (LUN ${v.local.lun}), the lab file says ${ref(m.primary)}`);
  }
  for (const s of m.secondaries) {
    const img = v.record.images.find((i) => i.array === s.array);
    if (!img) {
      w.push(`secondary ${ref(s)} of the lab file is not in the mirror (add it: sanbox mirror add-secondary ${m.name} --to ${ref(s)})`);
      continue;
    }
    if (img.role === 'primary') continue; // reported above (promoted)
    const id = await lunId(s);
    if (id !== undefined && img.lun !== id) w.push(`its image on ${s.array} is LUN ${img.lun}, the lab file says ${ref(s)} (LUN ${id})`);
  }
  for (const i of v.record.images) {
    if (i.array === m.primary.array || m.secondaries.some((s) => s.array === i.array)) continue;
    w.push(`image ${i.imageId} (${i.role}) is not in the lab file`);
  }
  return w;
}
