// CPU time of processes, for the CPU per write of a benchmark row (as bench:latency reports it).
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

let ticksPerSecond = null;
function clkTck() {
  if (ticksPerSecond === null) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/** User + system CPU of process `pid` (all its threads) in microseconds, from /proc (10 ms ticks). */
export function procCpuUs(pid) {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1e6) / clkTck();
}

/** This process's CPU (all threads) in microseconds. */
export function selfCpuUs() {
  const u = process.cpuUsage();
  return u.user + u.system;
}

/** The pids of `pid`'s children (an array chassis's SP processes). */
export function childPids(pid) {
  try {
    return execFileSync('pgrep', ['-P', String(pid)]).toString().trim().split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}
