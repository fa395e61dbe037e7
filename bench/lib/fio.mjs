// fio (JSON output) for the benchmarks: run one job, summarize its writes, kill what is left.
import { spawn } from 'node:child_process';

const children = new Set();

/** SIGKILLs every fio still running (on a failure or a signal). */
export function killChildren() {
  for (const c of children) {
    try {
      c.kill('SIGKILL');
    } catch {
      /* gone */
    }
  }
}

/**
 * Runs `fio --output-format=json ...args`; resolves with the parsed JSON. On a TTY a ticker
 * shows the elapsed seconds. Killed after `seconds` + 60 s.
 */
export function runFio(args, { label, seconds }) {
  return new Promise((res, rej) => {
    const child = spawn('fio', ['--output-format=json', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d) => { out += d; });
    child.stderr.setEncoding('utf8').on('data', (d) => { err += d; });
    const t0 = Date.now();
    const tty = process.stderr.isTTY;
    const tick = tty ? setInterval(() => process.stderr.write(`\r  ${label}: ${((Date.now() - t0) / 1000).toFixed(0)}/${seconds} s `), 500) : null;
    const bound = setTimeout(() => child.kill('SIGKILL'), (seconds + 60) * 1000);
    child.on('error', (e) => { err += `\n[spawn error: ${e.message}]`; });
    child.on('close', (code, signal) => { // 'close': every byte of fio's JSON has been read
      children.delete(child);
      clearTimeout(bound);
      if (tick) { clearInterval(tick); process.stderr.write('\r\x1b[K'); }
      if (code !== 0) return rej(new Error(`fio failed (exit ${code} ${signal ?? ''}) for ${label}\n$ fio ${args.join(' ')}\n${err}\n${out.slice(-2000)}`));
      try {
        res(JSON.parse(out.slice(out.indexOf('{'))));
      } catch (e) {
        rej(new Error(`cannot parse fio output for ${label}: ${e.message}\n${out.slice(0, 2000)}`));
      }
    });
  });
}

/** IOPS, I/O count and completion-latency percentiles (us) of the first job's writes. */
export function summarizeWrites(json) {
  const job = json.jobs[0];
  if (job.error) throw new Error(`fio job error ${job.error}`);
  const d = job.write;
  const p = d.clat_ns?.percentile ?? {};
  if (!(d.total_ios > 0)) throw new Error('fio completed no write');
  return { iops: d.iops, ios: d.total_ios, p50us: (p['50.000000'] ?? 0) / 1000, p99us: (p['99.000000'] ?? 0) / 1000, meanUs: (d.clat_ns?.mean ?? 0) / 1000 };
}

/** 4k random writes through fio's nbd engine, time-based. */
export function randWriteArgs(uri, qd, size, seconds, bs = '4k') {
  return ['--name=bench', '--ioengine=nbd', `--uri=${uri}`, '--rw=randwrite', `--bs=${bs}`, `--iodepth=${qd}`, `--size=${size}`, `--runtime=${Math.max(1, Math.round(seconds * 1000))}ms`, '--time_based'];
}
