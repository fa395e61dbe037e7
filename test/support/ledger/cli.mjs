#!/usr/bin/env node
// The acknowledged-write ledger as a command, so fault scenarios (shell scripts, CI, a human with
// two terminals) can drive it:
//
//   node test/support/ledger/cli.mjs write  -e nbd://127.0.0.1:10809/disk0 -e nbd://127.0.0.1:10810/disk0 \
//        --ledger /tmp/l.json --duration 20 --seed 7      # ... meanwhile: sanbox fault sp-crash alpha A
//   node test/support/ledger/cli.mjs verify -e nbd://127.0.0.1:10810/disk0 --ledger /tmp/l.json
//   node test/support/ledger/cli.mjs run    -e nbd://127.0.0.1:10809/disk0 --duration 5   # write, then verify
//
// Options:
//   -e, --endpoint URI        nbd://host:port/export (repeatable; connections spread over them,
//                             and a connection that dies reconnects to the next one)
//   --ledger FILE             where `write` saves the ledger and `verify` reads it
//   --connections N           NBD connections (default 4)
//   --depth N                 writes in flight per connection (default 4)
//   --blocks N                blocks in the region (default 256)
//   --block-size B            bytes per block, multiple of 512 (default 4096)
//   --offset BYTES            start of the region in the export (default 0)
//   --duration S              seconds of writing (default 10)
//   --max-writes N            bound on writes issued (default 20000)
//   --seed N                  block choice seed (default 1)
//   --run-id N                stamp of this run (default random)
//   --no-prefill              skip the first pass that writes every block once
//   --fua R                   fraction of writes with FUA (default 0)
//   --reconnect-timeout S     how long a connection tries to come back (default 15)
//   --initial zero|any        what a block without an acknowledged write may hold (default zero)
//   --all                     verify every block of the region, not just the written ones
//   --allow-read-errors       read errors (e.g. EIO of a cache-dirty LUN) do not fail verify
//   --json                    print the report(s) as JSON on stdout
//   --quiet                   no progress on stderr
// Exit codes: 0 ok, 1 violations (verify), 2 usage or setup error.
// SIGINT/SIGTERM during `write` stop the writer and save the ledger.
import { LedgerWriter, Ledger, verifyLedger, formatWriteReport, formatVerifyReport } from './ledger.mjs';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

function usage(msg) {
  if (msg) process.stderr.write(`ledger: ${msg}\n`);
  const src = readFileSync(fileURLToPath(import.meta.url), 'utf8');
  (msg ? process.stderr : process.stdout).write(src.split('\n').slice(1).filter((l) => l.startsWith('//')).map((l) => l.replace(/^\/\/ ?/, '')).join('\n') + '\n');
  process.exit(msg ? 2 : 0);
}

function parse(argv) {
  const cmd = argv[0];
  if (cmd === '-h' || cmd === '--help' || cmd === 'help') usage();
  if (!['write', 'verify', 'run'].includes(cmd)) usage(cmd ? `unknown command ${cmd}` : 'missing command');
  const o = { endpoints: [], json: false, quiet: false, prefill: true, all: false, allowReadErrors: false };
  const num = (v, name) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) usage(`${name} needs a number, got ${v}`);
    return n;
  };
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i];
    const [flag, inline] = a.startsWith('--') && a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const val = () => {
      const v = inline ?? argv[++i];
      if (v === undefined) usage(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '-e': case '--endpoint': o.endpoints.push(val()); break;
      case '--ledger': o.ledger = val(); break;
      case '--connections': o.connections = num(val(), flag); break;
      case '--depth': o.depth = num(val(), flag); break;
      case '--blocks': o.blocks = num(val(), flag); break;
      case '--block-size': o.blockSize = num(val(), flag); break;
      case '--offset': o.baseOffset = num(val(), flag); break;
      case '--duration': o.durationMs = num(val(), flag) * 1000; break;
      case '--max-writes': o.maxWrites = num(val(), flag); break;
      case '--seed': o.seed = num(val(), flag); break;
      case '--run-id': o.runId = num(val(), flag); break;
      case '--no-prefill': o.prefill = false; break;
      case '--fua': o.fuaRatio = num(val(), flag); break;
      case '--reconnect-timeout': o.reconnectTimeoutMs = num(val(), flag) * 1000; break;
      case '--initial': o.initial = val(); if (!['zero', 'any'].includes(o.initial)) usage('--initial is zero or any'); break;
      case '--all': o.all = true; break;
      case '--allow-read-errors': o.allowReadErrors = true; break;
      case '--json': o.json = true; break;
      case '--quiet': case '-q': o.quiet = true; break;
      case '-h': case '--help': usage(); break;
      default: usage(`unknown option ${a}`);
    }
  }
  if (o.endpoints.length === 0) usage('at least one --endpoint');
  if (cmd === 'verify' && !o.ledger) usage('verify needs --ledger');
  return { cmd, o };
}

async function main() {
  const { cmd, o } = parse(process.argv.slice(2));
  const log = (m) => {
    if (!o.quiet) process.stderr.write(`${m}\n`);
  };
  const out = {};
  let ledger;
  if (cmd === 'write' || cmd === 'run') {
    const w = new LedgerWriter(o);
    const onSig = () => {
      log('ledger: stopping (signal)');
      w.stop();
    };
    process.on('SIGINT', onSig);
    process.on('SIGTERM', onSig);
    w.on('fault', (f) => log(`ledger: connection to ${f.uri} lost (${f.reason})`));
    w.on('reconnect', (r) => log(`ledger: connection ${r.conn} reconnected to ${r.uri}`));
    const tick = setInterval(() => {
      const s = w.stats;
      log(`ledger: issued ${s.issued} acked ${s.acked} failed ${s.failed} in-flight-at-fault ${s.inflightAtFault} reconnects ${s.reconnects}`);
    }, 1000);
    let report;
    try {
      report = await w.run();
    } finally {
      clearInterval(tick);
      if (o.ledger) w.ledger.save(o.ledger);
    }
    log(formatWriteReport(report));
    if (o.ledger) log(`ledger: saved to ${o.ledger}`);
    out.write = report;
    ledger = w.ledger;
  }
  if (cmd === 'verify') ledger = Ledger.load(o.ledger);
  let ok = true;
  if (cmd === 'verify' || cmd === 'run') {
    const v = await verifyLedger(ledger, o);
    log(formatVerifyReport(v));
    out.verify = v;
    ok = v.ok;
  }
  if (o.json) process.stdout.write(JSON.stringify(out, null, 2) + '\n');
  process.exitCode = ok ? 0 : 1;
}

main().catch((e) => {
  process.stderr.write(`ledger: ${e?.stack ?? e}\n`);
  process.exit(2);
});
