/**
 * Client of the management API, used by the CLI (and later the monitor and the automation).
 * Failures are ClientErrors: `unreachable` when no API answers (connection refused, timeout, bad
 * URL), otherwise the API's own error code and HTTP status.
 */
export class ClientError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'ClientError';
  }
  get unreachable(): boolean {
    return this.code === 'unreachable';
  }
}

export interface ApiClientOptions {
  /** Base URL, e.g. http://127.0.0.1:8470 */
  url: string;
  token?: string;
  timeoutMs?: number;
}

export class ApiClient {
  readonly url: string;
  private readonly token: string | undefined;
  private readonly timeoutMs: number;

  constructor(opts: ApiClientOptions) {
    this.url = opts.url.replace(/\/+$/, '');
    this.token = opts.token;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
  }

  async request<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    let url: URL;
    try {
      url = new URL(this.url + path);
      if (url.protocol !== 'http:') throw new Error(`unsupported protocol ${url.protocol}`);
    } catch (e) {
      throw new ClientError('unreachable', `bad API URL ${JSON.stringify(this.url)}: ${(e as Error).message}`);
    }
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (e) {
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      const why = cause?.code ?? cause?.message ?? (e as Error).message;
      throw new ClientError('unreachable', `cannot reach the sanbox API at ${this.url}: ${why}`);
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      throw new ClientError('bad-response', `the API at ${this.url} answered ${res.status} with non-JSON: ${text.slice(0, 200)}`, res.status);
    }
    if (!res.ok) {
      const err = (json as { error?: { code?: string; message?: string } } | undefined)?.error;
      throw new ClientError(err?.code ?? 'http-' + res.status, err?.message ?? `HTTP ${res.status}`, res.status);
    }
    return json as T;
  }

  status<T = Record<string, unknown>>(): Promise<T> {
    return this.request<T>('GET', '/v1/status');
  }
  listLuns<T = unknown>(): Promise<{ luns: T[] }> {
    return this.request('GET', '/v1/luns');
  }
  createLun<T = unknown>(spec: { name: string; size: number | string; blockSize?: number }): Promise<{ lun: T }> {
    return this.request('POST', '/v1/luns', spec);
  }
  deleteLun<T = unknown>(ref: string | number, force = false): Promise<{ deleted: T }> {
    return this.request('DELETE', `/v1/luns/${encodeURIComponent(String(ref))}${force ? '?force=true' : ''}`);
  }
  growLun<T = unknown>(ref: string | number, size: number | string): Promise<{ lun: T }> {
    return this.request('POST', `/v1/luns/${encodeURIComponent(String(ref))}/grow`, { size });
  }
  shutdown(): Promise<unknown> {
    return this.request('POST', '/v1/shutdown');
  }
}
