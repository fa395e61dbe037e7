/**
 * Routes of a LUN's disk fault (src/control/disk-faults.ts): set, clear and show one LUN's, list
 * every active one. A bad fault is a 400 listing every problem, and changes nothing.
 */
import type { DiskFaultControl } from '../disk-faults.js';
import { drain, readJson, route, type Route } from './http.js';

export function diskFaultRoutes(ctl: DiskFaultControl): Route[] {
  const R = route;
  return [
    R(/^\/v1\/faults\/disk$/, { GET: async () => ({ diskFaults: await ctl.list() }) }),
    R(/^\/v1\/luns\/([^/]+)\/disk-fault$/, {
      GET: async (req, _res, [ref]) => {
        await drain(req);
        return { diskFault: await ctl.show(ref!) };
      },
      PUT: async (req, _res, [ref]) => ({ diskFault: await ctl.set(ref!, await readJson(req)) }),
      DELETE: async (req, _res, [ref]) => {
        await drain(req);
        return ctl.clear(ref!);
      },
    }),
  ];
}
