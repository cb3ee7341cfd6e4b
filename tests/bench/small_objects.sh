#!/usr/bin/env bash
# The small-object benchmark of issue 17 (by hand, not in CI): the `many-small` synth archive
# (~200,000 objects of a few KB), local, over a loopback S3 (s3s-fs) at 0 ms, and through
# the delay proxy (tests/bench/delay_proxy.rs, an example built here) at 50 ms of round-trip
# time. Needs the release binary, s3s-fs
# (`cargo install s3s-fs@0.14.1 --features binary`).
# The server runs on the last core (SERVER_CPUS to choose others): left to the scheduler, on a
# machine of two cores, its hundreds of threads land on keytrail's cores and keytrail's CPU per
# object is read ~40% higher (2026-11-30: 251 µs against 172–182 pinned). The proxies are left
# free: pinned beside the server they starve it (tests/bench/README.md, 2026-11-30).
set -euo pipefail
cd "$(dirname "$0")/../.."
K=target/release/keytrail
DATA=${DATA:-/tmp/many-small}
[ -d "$DATA/logs" ] || $K synth --out "$DATA" --preset many-small --seed 5
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=testsecret AWS_REGION=us-east-1 \
  AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/nonexistent AWS_SHARED_CREDENTIALS_FILE=/nonexistent
SERVER_CPUS=${SERVER_CPUS:-$(( $(nproc) - 1 ))}
ROOT=$(mktemp -d)
mkdir -p "$ROOT/many-small" && cp -r "$DATA/logs/." "$ROOT/many-small/"   # s3s-fs: a folder is a bucket
taskset -c "$SERVER_CPUS" s3s-fs --host 127.0.0.1 --port 9016 --access-key test --secret-key testsecret "$ROOT" & S3=$!
cargo build --release --locked --quiet --example delay_proxy
P=target/release/examples/delay_proxy
$P 9017 127.0.0.1:9016 50 & PROXY=$!
# The same proxy without delay: on a machine of few cores the proxy's own CPU slows a run, so
# the latency is read between the two runs through a proxy.
$P 9018 127.0.0.1:9016 0 & PROXY0=$!
trap 'kill $S3 $PROXY $PROXY0; rm -rf "$ROOT"' EXIT
sleep 1
echo "== local + S3 at 0 ms"
AWS_ENDPOINT_URL=http://127.0.0.1:9016 $K bench --usage "$DATA/usage.jsonl" --logs "$DATA/logs" --s3-logs s3://many-small
echo "== S3 through the proxy at 0 ms"
AWS_ENDPOINT_URL=http://127.0.0.1:9018 $K bench --usage "$DATA/usage.jsonl" --logs "$DATA/logs" --s3-logs s3://many-small
echo "== S3 at 50 ms round trip"
AWS_ENDPOINT_URL=http://127.0.0.1:9017 $K bench --usage "$DATA/usage.jsonl" --logs "$DATA/logs" --s3-logs s3://many-small
