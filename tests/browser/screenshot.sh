#!/usr/bin/env bash
# Regenerates samples/report.png, the README's picture of report.html: runs keytrail on the
# bundled samples and photographs the report in headless Chromium (needs what tests/run installs:
# chromium, chromium-driver, selenium).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cargo run --quiet -- run --usage samples/usage.jsonl --logs samples/logs --out "$out/report" --quiet || [ $? -le 1 ]
python3 tests/browser/observe.py "$out/report/report.html" --screenshot samples/report.png --width 1280 --height 2200
echo "samples/report.png: $(stat -c %s samples/report.png) bytes"
