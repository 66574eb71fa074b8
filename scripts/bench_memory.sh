#!/usr/bin/env bash
# Memory that does not grow with the export, in the two cases that used to break it:
#
#   scripts/bench_memory.sh [ROWS] [FORMAT]   # defaults: 10000000 parquet
#
# - every row rejected (`hash = "sha256"` on a column of CRM IDs, which are not e-mail
#   addresses), without and with --rejects;
# - a key-value rule on a column with a distinct value per user (the e-mail hash).
# Each is timed in turn with the plain run of mappings/bench.toml on the same export, RUNS
# times (default 3); prints the medians of wall time and peak RSS and the ratios to the plain
# run. For the key-value case it also prints the limit of its target: 1.5x the plain run plus
# the extra gzip work of its larger output (pigz -p 2 -6 of both outputs). Release build;
# data in bench-data/, outputs in bench-out/ (git-ignored). Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."

ROWS=${1:-10000000}
FORMAT=${2:-parquet}
RUNS=${RUNS:-3}
TS=1700000000
DATA=bench-data/$ROWS
OUT=bench-out/memory
mkdir -p "$DATA" "$OUT"
command -v pigz >/dev/null || { apt-get update -qq && apt-get install -y -qq pigz >/dev/null; }
[[ -x /usr/bin/time ]] || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }

cargo build --release --quiet --bin aam-etl --example gen_crm
BIN=${CARGO_TARGET_DIR:-target}/release
[[ -f $DATA/crm.$FORMAT ]] || $BIN/examples/gen_crm --rows "$ROWS" --out "$DATA"
INPUT=$DATA/crm.$FORMAT

# The variants of the benchmark mapping.
sed 's/^type = "dpuuid"$/type = "dpuuid"\nhash = "sha256"/' mappings/bench.toml >"$OUT/rejected.toml"
{ cat mappings/bench.toml; printf '\n[[traits]]\ntype = "key_value"\ncolumn = "email_sha256"\nkey = "e"\n'; } >"$OUT/distinct.toml"
grep -q 'hash = "sha256"' "$OUT/rejected.toml"

# Runs a command under /usr/bin/time -v (exit 0 or 1 expected); prints "wall rss_mb".
measure() {
  # The previous case's output (a 1 GB rejects file) is written back first, not during
  # this case's spill.
  sync
  local log; log=$(mktemp)
  local code=0
  /usr/bin/time -v "$@" >/dev/null 2>"$log" || code=$?
  [[ $code -le 1 ]] || { cat "$log"; exit 1; }
  awk -F': ' '
    /Elapsed \(wall clock\)/ { n = split($2, p, ":"); wall = (n == 3) ? p[1]*3600 + p[2]*60 + p[3] : p[1]*60 + p[2] }
    /Maximum resident/ { rss = $2 / 1024 }
    END { printf "%.2f %.0f\n", wall, rss }' "$log"
  rm -f "$log"
}
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
run() { # name mapping [extra args]
  local m=$2; shift 2
  measure $BIN/aam-etl --mapping "$m" "$INPUT" --out "$OUT/o" --timestamp $TS --force "$@"
}

declare -A WALL RSS
CASES=(plain rejected rejected_file distinct)
for i in $(seq "$RUNS"); do
  for c in "${CASES[@]}"; do
    case $c in
      plain) r=$(run plain mappings/bench.toml) ;;
      rejected) r=$(run rejected "$OUT/rejected.toml") ;;
      rejected_file) r=$(run rejected "$OUT/rejected.toml" --rejects "$OUT/rejects.csv") ;;
      distinct) r=$(run distinct "$OUT/distinct.toml") ;;
    esac
    WALL[$c]+="${r% *} "; RSS[$c]+="${r#* } "
  done
done

m() { tr ' ' '\n' <<<"$1" | grep . | median; }
printf '%-14s %8s %10s %9s %9s\n' case wall_s peak_MB wall/plain rss/plain
pw=$(m "${WALL[plain]}"); pr=$(m "${RSS[plain]}")
for c in "${CASES[@]}"; do
  w=$(m "${WALL[$c]}"); r=$(m "${RSS[$c]}")
  printf '%-14s %8s %10s %9.2f %9.2f\n' "$c" "$w" "$r" "$(echo "$w / $pw" | bc -l)" "$(echo "$r / $pr" | bc -l)"
done

# The key-value target: 1.5 x (plain + the extra gzip work of the larger output).
$BIN/aam-etl --mapping mappings/bench.toml "$INPUT" --out "$OUT/plain" --timestamp $TS --force >/dev/null
$BIN/aam-etl --mapping "$OUT/distinct.toml" "$INPUT" --out "$OUT/distinct" --timestamp $TS --force >/dev/null
pigz_time() {
  local t0 t1
  gzip -dc "$1" >"$OUT/text"
  t0=$(date +%s.%N); pigz -p 2 -6 -c "$OUT/text" >/dev/null; t1=$(date +%s.%N)
  rm -f "$OUT/text"; echo "$t1 - $t0" | bc -l
}
gp=$(pigz_time "$OUT"/plain/*.gz); gd=$(pigz_time "$OUT"/distinct/*.gz)
printf 'pigz of the outputs: plain %.2f s, distinct %.2f s; distinct limit 1.5 x (%.2f + %.2f) = %.2f s\n' \
  "$gp" "$gd" "$pw" "$(echo "$gd - $gp" | bc -l)" "$(echo "1.5 * ($pw + $gd - $gp)" | bc -l)"
