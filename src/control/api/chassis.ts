/** Routes of a two-SP array's chassis: SP status, faults, battery, trespass, recover. */
import type { IncomingMessage } from 'node:http';
import { checkBody, type FieldKind } from './fields.js';
import { readOptionalJson, route, type Route } from './http.js';

/** What the API needs from a two-SP array's chassis (src/array/chassis satisfies it). */
export interface ChassisControl {
  status(): Promise<Record<string, unknown>>;
  lunView(id: number): Record<string, unknown>;
  spCrash(sp: string): Promise<unknown>;
  spRestart(sp: string): Promise<unknown>;
  powerFail(): Promise<unknown>;
  powerRestore(): Promise<unknown>;
  batteryFail(undetected: boolean): Promise<unknown>;
  batteryRepair(): Promise<unknown>;
  batteryCharge(charge: number): Promise<unknown>;
  trespass(ref: string, to?: string): Promise<unknown>;
  recover(ref: string, acceptDataLoss: boolean): Promise<unknown>;
}

export function chassisRoutes(ch: ChassisControl): Route[] {
  const R = route;
  const body = async (req: IncomingMessage, fields: Record<string, FieldKind>) => checkBody(await readOptionalJson(req), fields);
  return [
    R(/^\/v1\/sps$/, { GET: async () => ({ sps: (await ch.status()).sps }) }),
    R(/^\/v1\/faults\/sp-crash$/, { POST: async (req) => ch.spCrash((await body(req, { sp: 'string' })).sp as string) }),
    R(/^\/v1\/faults\/sp-restart$/, { POST: async (req) => ch.spRestart((await body(req, { sp: 'string' })).sp as string) }),
    R(/^\/v1\/faults\/power-fail$/, { POST: async (req) => (await body(req, {}), ch.powerFail()) }),
    R(/^\/v1\/faults\/power-restore$/, { POST: async (req) => (await body(req, {}), ch.powerRestore()) }),
    R(/^\/v1\/faults\/battery-fail$/, { POST: async (req) => ch.batteryFail((await body(req, { undetected: 'boolean?' })).undetected === true) }),
    R(/^\/v1\/faults\/battery-repair$/, { POST: async (req) => (await body(req, {}), ch.batteryRepair()) }),
    R(/^\/v1\/battery$/, { POST: async (req) => ch.batteryCharge((await body(req, { charge: 'number' })).charge as number) }),
    R(/^\/v1\/luns\/([^/]+)\/trespass$/, { POST: async (req, _res, [ref]) => ch.trespass(ref!, (await body(req, { to: 'string?' })).to as string | undefined) }),
    R(/^\/v1\/luns\/([^/]+)\/recover$/, { POST: async (req, _res, [ref]) => ch.recover(ref!, (await body(req, { acceptDataLoss: 'boolean?' })).acceptDataLoss === true) }),
  ];
}
