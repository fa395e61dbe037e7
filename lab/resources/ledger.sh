#!/bin/sh
# A host resource of the site automation (docs/automation.md): an application that writes to its
# volume set, here the acknowledged-write ledger writer (sanbox check ledger write), run in the
# background at the site where its resource group is online.
#
#   ledger.sh start|stop|monitor URI-VARIABLE
#
# Each site writes its own region of the LUN (east: the first 8 MiB, any other site the next),
# so the ledger one site left stays checkable after a move: sanbox check ledger verify --state
# <the site's resource dir>/ledger.json --uri <the new primary's URI>.
set -u
dir="${SANBOX_RESOURCE_DIR:?run by the automation controller}"
pidfile="$dir/pid"
# alive and not a zombie (where nothing reaps orphans, an exited writer stays in the process table)
running() {
  [ -f "$pidfile" ] || return 1
  pid="$(cat "$pidfile")"
  kill -0 "$pid" 2>/dev/null && ! grep -q '^[0-9]* (.*) Z' "/proc/$pid/stat" 2>/dev/null
}
case "${1:-}" in
  start)
    running && exit 0
    eval "uri=\${${2:?the variable holding the NBD URI, e.g. SANBOX_URI_M0}:?no such URI variable: $2}"
    offset=0
    [ "${SANBOX_SITE:-}" = "${LEDGER_FIRST_SITE:-east}" ] || offset=8388608
    nohup sanbox check ledger write --uri "$uri" --state "$dir/ledger.json" --blocks "${LEDGER_BLOCKS:-512}" \
      --offset "$offset" --seconds 86400 --connections 2 --depth 2 --reconnect-timeout 5 -q >> "$dir/writer.log" 2>&1 &
    echo $! > "$pidfile"
    ;;
  stop)
    # SIGTERM: the writer saves its ledger and exits
    running && kill "$(cat "$pidfile")"
    exit 0
    ;;
  monitor)
    running
    ;;
  *)
    echo "usage: ledger.sh start|stop|monitor URI-VARIABLE" >&2
    exit 2
    ;;
esac
