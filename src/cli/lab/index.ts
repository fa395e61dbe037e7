/**
 * Lab files (YAML) and lab state files. One file per section of the lab file (arrays.ts,
 * links.ts, mirrors.ts, groups.ts, sps.ts), the scalar values they share (values.ts), the whole
 * file (parse.ts), what each array process gets (config.ts), and the state files (state.ts).
 *
 * A lab file describes arrays and their LUNs:
 *
 *     lab: default                  # optional; default: the file name without extension
 *     arrays:
 *       - name: alpha
 *         dir: ../images/alpha      # optional; relative to this file; default <images>/<name>
 *         nbd: { bind: 127.0.0.1, port: 10809 }
 *         api: { bind: 127.0.0.1, port: 8470 }   # token: required off loopback
 *         readOnly: false           # optional
 *         luns:
 *           - { name: disk0, size: 1G }
 *           - { name: disk1, size: 256M, blockSize: 4096 }
 *
 * Links (remote links between arrays, each carried by a link emulator in the supervisor):
 *
 *     arrays:
 *       - name: alpha
 *         remoteLink: { bind: 127.0.0.1, port: 10870 }   # the array's remote-link port
 *       - name: bravo
 *         host: 10.0.0.2                 # runs on another host: not started here
 *         remoteLink: { port: 10880 }    # address: HOST:PORT (default host:port)
 *     links:
 *       - name: alpha-bravo
 *         between: [alpha, bravo]        # a and b: directions are a-to-b and b-to-a
 *         listen: { bind: 127.0.0.1, toB: 10871, toA: 10872 }  # alpha dials toB, bravo toA
 *         api: { bind: 127.0.0.1, port: 8490 }
 *         latency: 5                     # ms, or { a-to-b: 5, b-to-a: 7 }; jitter the same
 *         bandwidth: 100M                # bytes/s (0 / unlimited: no cap), or per direction
 *         cut: none                      # none | a-to-b | b-to-a | both
 *         queueSize: 1M                  # per connection and direction
 *         cutResetMs: 15000              # a cut this long resets the connections (0: never)
 *         precise: false                 # true: delays to a few µs by polling the clock (up to a core while busy)
 *         secret: ...                    # shared handshake secret (16+ characters), or secretFile: PATH
 *
 * Mirrors (`sanbox up` creates them on their primary arrays when absent; see mirrors.ts):
 *
 *     mirrors:
 *       - name: m0
 *         primary: alpha:disk0           # ARRAY:LUN
 *         secondaries: [bravo:disk0]     # or { image, synchronized, recovery, syncRate }
 *         writePolicy: synchronous       # regionSize, syncRate, activation, minImages, maxMissing,
 *                                        # secondaryReads, syncPriority: optional
 *
 * Consistency groups (`sanbox up` creates them on the members' primary array after the mirrors;
 * see groups.ts):
 *
 *     groups:
 *       - name: g0
 *         members: [m1, m2]              # mirrors of mirrors: (same primary array, same secondary arrays)
 *         mode: asynchronous             # or near-synchronous (with nearSync) or synchronous
 *         nearSync: { maxEntries: 0, maxBytes: 64M, lowEntries: 0, lowBytes: 32M }
 *         writelog: { capacity: 256M, extensions: 2, extensionSize: 64M, extendAt: 90 }
 *         throttleEvery: 10s
 *         throttles: [{ from: "08:00:00", to: "18:00:00", measure: netkbps, op: gt, value: 200, actions: [{ do: sleep-incr, ms: 15 }] }]
 *         perf: { every: 10s, maxSize: 1M }
 *
 * Sites and the restart policy (see sites.ts):
 *
 *     sites:
 *       - { name: east, arrays: [alpha] }   # an array in no site is its own site
 *     restart: { policy: on-failure, backoffMs: 1000, limit: 3 }   # default: never
 *
 * The web dashboard (see dashboard.ts; default: 127.0.0.1, any free port):
 *
 *     dashboard: { bind: 127.0.0.1, port: 8480 }   # token: required off loopback; or: dashboard: off
 *
 * Heartbeat agents (see heartbeat.ts and docs/heartbeat.md):
 *
 *     heartbeat: { production: alpha, standby: bravo, interval: 500ms, timeout: 6,
 *                  hosts: [{ name: alpha-1, site: alpha }, { name: bravo-1, site: bravo }],
 *                  mirrors: [hb0, hb1], failover: { promote: [m0] } }
 *
 * Each array process gets `remoteLink: { bind, port, peers }` (arrayConfig / peersOf in config.ts).
 *
 * The state file of a running lab is `<images>/.labs/<lab>.json` (mode 0600): supervisor pid,
 * and for every array its pid, directory, NBD endpoint and API URL (and token if any).
 */
export type { LabDashboard, LabHeartbeat, LabMonitor, LabMonitorResource } from './types.js';
export { HB_NETWORK_LINK, NOTICE_LEVEL_NAMES, heartbeatLinkNames } from './heartbeat.js';
export type { Lab, LabArray, LabGroup, LabLink, LabLinkSettings, LabLunRef, LabMirror, LabSecondary, LabSite, LinkDirection, RestartPolicy } from './types.js';
export { DEFAULT_RESTART_POLICY, parseRestart, parseSites } from './sites.js';
export { LabError } from './types.js';
export { labNameOf, loadLab, parseLab } from './parse.js';
export { MIN_SECRET, parseDuration, parseRate } from './values.js';
export { linkBetween } from './links.js';
export { parseSps } from './sps.js';
export { parseMonitor } from './monitor.js';
export { parseDashboard } from './dashboard.js';
export { arrayConfig, peersOf, type LabArrayConfig, type LinkListeners } from './config.js';
export type { ArrayRunState, LabState, LabStateArray, LabStateAutomation, LabStateGroup, LabStateHeartbeat, LabStateLink, LabStateMirror } from './state.js';
export { eventsPath, labAlive, readState, removeState, runningLabs, statePath, writeState } from './state.js';
