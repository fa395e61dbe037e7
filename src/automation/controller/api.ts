/**
 * The controller's HTTP API (every route needs the lab's automation secret as a bearer token):
 *   GET  /v1/status                       site, peer, groups (lease, last operation)
 *   GET  /v1/operations                   the step logs kept
 *   GET  /v1/events                       automation.* events (SSE, replay)
 *   POST /v1/rg/online  {rg, site?, plan?}
 *   POST /v1/rg/offline {rg, plan?}
 *   POST /v1/rg/move    {rg, site, plan?}  asked of the destination site's controller
 *   POST /v1/site/recover {site, plan?}    asked of the surviving site's controller; site = the lost one
 *   GET  /v1/peer/leases, POST /v1/peer/lease {rg, to, epoch}   the other controller's channel
 */
import { HttpRefusal, ServiceHttp, type PostHandler } from '../../service-kit/index.js';
import { LeaseRefusal } from '../rg/lease.js';
import type { OpKind } from '../rg/operation.js';
import { Refusal, type AutomationController } from './controller.js';

type Body = Record<string, unknown>;

function body(b: unknown): Body {
  if (b === null || typeof b !== 'object' || Array.isArray(b)) throw new HttpRefusal(400, 'invalid-argument', 'the body must be a JSON object');
  return b as Body;
}

function plan(b: Body): boolean {
  if (b.plan !== undefined && typeof b.plan !== 'boolean') throw new HttpRefusal(400, 'invalid-argument', 'plan must be true or false');
  return b.plan === true;
}

/** Refusals of the controller and of the lease become HTTP refusals; anything else is a 500. */
function guarded(fn: (b: Body) => unknown | Promise<unknown>, status = 202): PostHandler {
  return async (raw) => {
    try {
      return { status, body: await fn(body(raw)) };
    } catch (e) {
      if (e instanceof Refusal) throw new HttpRefusal(e.status, e.code, e.message);
      if (e instanceof LeaseRefusal) throw new HttpRefusal(409, e.code, e.message);
      throw e;
    }
  };
}

export function controllerHttp(c: AutomationController): ServiceHttp {
  const op = (kind: OpKind) =>
    guarded(async (b) => {
      const r = await c.request(kind, b.rg, b.site, plan(b));
      return r.plan ? { plan: r.plan } : { operation: r.operation };
    });
  return new ServiceHttp({
    service: 'automation controller',
    host: c.cfg.listen.host,
    port: c.cfg.listen.port,
    token: c.cfg.secret,
    events: c.events,
    get: {
      '/v1/status': () => c.status(),
      '/v1/operations': () => ({ operations: c.store.operations() }),
      '/v1/peer/leases': () => ({ site: c.site, leases: c.store.leases() }),
    },
    post: {
      '/v1/rg/online': op('online'),
      '/v1/rg/offline': op('offline'),
      '/v1/rg/move': op('move'),
      '/v1/site/recover': guarded((b) => c.recoverSite(b.site, plan(b), 'operator')),
      '/v1/peer/lease': guarded(async (b) => ({ lease: await c.handOver(b.rg, b.to, b.epoch) }), 200),
    },
  });
}
