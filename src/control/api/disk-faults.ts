/**
 * Routes of a LUN's disk fault (src/control/disk-faults.ts): set, clear and show one LUN's, list
 * every active one. Unknown fields are a 400 like in every route family; any other bad value is a
 * 400 listing every problem. Either changes nothing.
 */
import { DISK_FAULT_FIELDS } from '../../fault/index.js';
import type { DiskFaultControl } from '../disk-faults.js';
import { rejectUnknownFields } from './fields.js';
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
      PUT: async (req, _res, [ref]) => {
        const body = await readJson(req);
        // not an object: validateDiskFault says so (with the LUN's name)
        if (body !== null && typeof body === 'object' && !Array.isArray(body)) rejectUnknownFields(body, DISK_FAULT_FIELDS);
        return { diskFault: await ctl.set(ref!, body) };
      },
      DELETE: async (req, _res, [ref]) => {
        await drain(req);
        return ctl.clear(ref!);
      },
    }),
  ];
}
