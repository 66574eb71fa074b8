#!/usr/bin/env bash
# Upload throughput: `aam-etl push` against `aws s3 cp --recursive` of the same files to the
# same local S3 server (moto), side by side.
#
#   scripts/bench_upload.sh [ROWS]   # default 10000000 rows
#
# Converts the benchmark export once (bench-data/, bench-out/upload/ are git-ignored), starts
# moto_server on a free port, then times both uploads in turn with farm-bench (RUNS pairs,
# default 5), each run into a fresh prefix so that nothing is skipped. Needs moto[server]
# and awscli (pip); release build. Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."

ROWS=${1:-10000000}
RUNS=${RUNS:-5}
DATA=bench-data/$ROWS
OUT=bench-out/upload
command -v moto_server >/dev/null || python3 -m pip install --quiet "moto[server]"
command -v aws >/dev/null || python3 -m pip install --quiet awscli
command -v pyenv >/dev/null && pyenv rehash

cargo build --release --quiet --bin aam-etl --example gen_crm
BIN=$(realpath "${CARGO_TARGET_DIR:-target}/release")
[[ -f $DATA/crm.parquet ]] || "$BIN/examples/gen_crm" --rows "$ROWS" --out "$DATA"
rm -rf "$OUT"; mkdir -p "$OUT"
"$BIN/aam-etl" --mapping mappings/bench.toml "$DATA/crm.parquet" --out "$OUT/files" \
  --timestamp 1700000000 >/dev/null
echo "files: $(ls "$OUT/files" | wc -l), $(du -sb "$OUT/files" | cut -f1) bytes"

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
moto_server -H 127.0.0.1 -p "$PORT" >/dev/null 2>&1 &
MOTO=$!
trap 'kill $MOTO' EXIT
until curl -s "http://127.0.0.1:$PORT" >/dev/null; do sleep 0.2; done
curl -s -X PUT "http://127.0.0.1:$PORT/bench" >/dev/null

export AWS_ENDPOINT_URL=http://127.0.0.1:$PORT AWS_ACCESS_KEY_ID=bench \
  AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
farm-bench -n "$RUNS" --timeout 3600 \
  --vs "sh -c 'exec aws s3 cp --quiet --recursive --acl bucket-owner-full-control $OUT/files s3://bench/aws-\$(date +%s%N)/'" \
  -- sh -c "exec $BIN/aam-etl push $OUT/files --deliver s3://bench/aam-\$(date +%s%N)/ >/dev/null"
