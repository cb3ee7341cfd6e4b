#!/usr/bin/env bash
# Seeds the fuzz corpus from the bundled samples: each log object once as gzip (mode byte 0)
# and once inflated (mode byte 1). See fuzz_targets/decode.rs.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
corpus="$here/corpus/decode"
mkdir -p "$corpus"
n=0
while IFS= read -r -d '' f; do
  n=$((n + 1))
  { printf '\x00'; cat "$f"; } > "$corpus/gz-$n"
  { printf '\x01'; gzip -dc "$f" 2>/dev/null || true; } > "$corpus/json-$n"
done < <(find "$here/../../samples/logs" -name '*.json.gz' -print0 | sort -z)
echo "seeded $corpus with $((2 * n)) inputs"
