/**
 * The witness (`sanbox hb witness`): a tiny process at a third site, on its own emulated links.
 * Each site's master reports to it every interval (POST /v1/beat) and gets back when the witness
 * last heard from every site (its own monotonic clock): the standby fails over only when the
 * witness has not heard the production either, and a production that cannot reach the witness or
 * the standby fences itself. It keeps no state on disk: a restarted witness knows nothing, which
 * reads as "production silent" only after a full timeout of its own uptime (see ageMs null).
 */
import { HttpRefusal, ServiceEvents, ServiceHttp } from '../../service-kit/index.js';

export interface WitnessOptions {
  host: string;
  port: number;
  cluster: string;
  log?: (line: string) => void;
}

export class Witness {
  readonly events: ServiceEvents;
  private readonly heard = new Map<string, { monoMs: number; host: string; beats: number }>();
  private http: ServiceHttp | undefined;
  private readonly startedMono = performance.now();

  constructor(private readonly opts: WitnessOptions) {
    this.events = new ServiceEvents(opts.log);
  }

  /** Ages in ms since each site was last heard; null: never since the witness started. */
  sites(): Record<string, { ageMs: number | null; host: string | null; beats: number }> {
    const now = performance.now();
    return Object.fromEntries([...this.heard].map(([site, h]) => [site, { ageMs: Math.round(now - h.monoMs), host: h.host, beats: h.beats }]));
  }

  beat(body: unknown): { sites: ReturnType<Witness['sites']> } {
    if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new HttpRefusal(400, 'invalid-argument', 'the body must be { cluster, site, host }');
    const { cluster, site, host, ...rest } = body as Record<string, unknown>;
    if (Object.keys(rest).length) throw new HttpRefusal(400, 'invalid-argument', `unknown field "${Object.keys(rest)[0]}" (expected cluster, site, host)`);
    if (cluster !== this.opts.cluster) throw new HttpRefusal(403, 'wrong-cluster', `this witness serves cluster ${this.opts.cluster}, not ${JSON.stringify(cluster)}`);
    if (typeof site !== 'string' || !site || typeof host !== 'string' || !host) throw new HttpRefusal(400, 'invalid-argument', 'site and host must be non-empty strings');
    const prev = this.heard.get(site);
    if (!prev) this.events.emit('hb.witness-site', { site, host, state: 'heard' });
    else if (prev.host !== host) this.events.emit('hb.witness-site', { site, host, previous: prev.host, state: 'master-changed' });
    this.heard.set(site, { monoMs: performance.now(), host, beats: (prev?.beats ?? 0) + 1 });
    return { sites: this.sites() };
  }

  async start(): Promise<number> {
    this.http = new ServiceHttp({
      service: 'witness',
      host: this.opts.host,
      port: this.opts.port,
      events: this.events,
      get: { '/v1/status': () => ({ cluster: this.opts.cluster, uptimeMs: Math.round(performance.now() - this.startedMono), sites: this.sites() }) },
      post: { '/v1/beat': (b) => ({ status: 200, body: this.beat(b) }) },
    });
    return this.http.start();
  }

  async stop(): Promise<void> {
    await this.http?.close();
  }
}
