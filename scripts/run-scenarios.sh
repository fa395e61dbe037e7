#!/usr/bin/env bash
# Runs the shipped scenarios (scenarios/*.yaml) with their fixed seeds, one after another, each
# with its report under $1 (default /tmp/sanbox-scenarios). Exit 1 if any failed; every failure
# prints its seed and rerun command. `npm run test:scenarios` (CI runs it after npm test).
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-/tmp/sanbox-scenarios}"
rm -rf "$out"
mkdir -p "$out"
failed=()
for f in scenarios/*.yaml; do
  name="$(basename "$f" .yaml)"
  if ! timeout 10m node bin/sanbox.js scenario run "$f" --report "$out/$name" -q; then failed+=("$name"); fi
done
if [ "${#failed[@]}" -gt 0 ]; then
  echo "scenarios failed: ${failed[*]} (reports in $out)"
  exit 1
fi
echo "all $(ls scenarios/*.yaml | wc -l) scenarios passed (reports in $out)"
