// What the machine does with an idle vCPU, which the QD1 rows of every benchmark pay for.
//
// These machines are VMs whose guest kernel idles a vCPU through the haltpoll cpuidle driver.
// With guest halt polling off (/sys/module/haltpoll/parameters/guest_halt_poll_ns = 0, as booted
// here), an idle vCPU halts at once and waking it takes ~100-200 us. A request that hops between
// processes on different CPUs pays that on each hop: a 4 KiB ping-pong through a trivial Node
// proxy measured 243-268 us round trip with polling off, 53-67 us with 200 us of polling, and
// 70 us with both processes pinned to one CPU (2026-12-04). Numbers of QD1 rows then depend on
// whether the other CPU happened to be busy, which is most of why they moved between runs.
//
// SANBOX_HALT_POLL_NS=N sets guest_halt_poll_ns for the run (root; the old value is restored at
// exit). Every benchmark prints the setting and records it in its results (machineFacts()).
import { readFileSync, writeFileSync } from 'node:fs';

const HALT_POLL_NS = '/sys/module/haltpoll/parameters/guest_halt_poll_ns';
const GOVERNOR = '/sys/devices/system/cpu/cpuidle/current_governor_ro';

function readOr(path, fallback) {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return fallback; // not a haltpoll guest (bare metal, another hypervisor): nothing to say
  }
}

/** The idle facts of this machine: the cpuidle governor and the guest halt-polling window (ns), null where absent. */
export function machineFacts() {
  const ns = readOr(HALT_POLL_NS, null);
  return { cpuidleGovernor: readOr(GOVERNOR, null), haltPollNs: ns === null ? null : Number(ns) };
}

/** "guest halt polling 0 ns" for a report's header ("no guest halt polling" where the machine has none, or an old result). */
export function machineText(facts) {
  return facts?.haltPollNs == null ? 'no guest halt polling' : `guest halt polling ${facts.haltPollNs} ns`;
}

/**
 * Applies SANBOX_HALT_POLL_NS if set (restored at exit), then says what the run measures under.
 * `log` prints a note; `die` reports a setting that cannot be applied.
 */
export function applyHaltPoll(program, log, die) {
  const want = process.env.SANBOX_HALT_POLL_NS;
  const before = machineFacts().haltPollNs;
  if (want !== undefined && want !== '') {
    if (!/^\d+$/.test(want) || Number(want) > 10_000_000) die(`SANBOX_HALT_POLL_NS=${want}: a number of nanoseconds up to 10000000`);
    if (before === null) die(`SANBOX_HALT_POLL_NS: this machine has no ${HALT_POLL_NS}`);
    try {
      writeFileSync(HALT_POLL_NS, want);
    } catch (e) {
      die(`SANBOX_HALT_POLL_NS: cannot write ${HALT_POLL_NS} (${e.code ?? e.message}; root only)`);
    }
    const restore = () => writeFileSync(HALT_POLL_NS, String(before));
    process.once('exit', restore);
    // a signal must exit (not just kill) for 'exit' to restore: where the bench has no handler of its own
    for (const sig of ['SIGINT', 'SIGTERM']) if (process.listenerCount(sig) === 0) process.once(sig, () => process.exit(130));
    log(`${program}: guest halt polling set to ${want} ns for this run (was ${before}; restored at exit)`);
    return;
  }
  if (before === 0) log(`${program}: note: guest halt polling is off (${HALT_POLL_NS} = 0): waking an idle vCPU costs ~100-200 us, paid on every hop between processes at QD1 (SANBOX_HALT_POLL_NS=200000 polls; see bench/lib/machine.mjs)`);
}
