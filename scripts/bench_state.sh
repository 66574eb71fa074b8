#!/usr/bin/env bash
# Incremental delivery at scale: a daily run with a state against a plain run of the same
# export.
#
#   scripts/bench_state.sh [ROWS] [CHANGED]   # defaults: 10000000 rows, 1 (% of users)
#
# Day 1 is the benchmark export (`gen_crm`); day 2 is the same export with CHANGED% of the
# users' profiles changed (`gen_crm --changed`). Day 1 is converted once with --state; then
# the day-2 run with that state (the state folder restored before each run) and a plain run
# of day 2 are timed in turn, RUNS times (default 3): medians of wall time and peak RSS and
# their ratios. Also prints the state's size on disk per user and per trait, and the size of
# day 2's delivery against the full file. Release build; data in bench-data/, outputs in
# bench-out/ (git-ignored). Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."

ROWS=${1:-10000000}
CHANGED=${2:-1}
RUNS=${RUNS:-3}
TS1=1700000000
TS2=1700086400
DAY1=bench-data/$ROWS
DAY2=bench-data/$ROWS-changed$CHANGED
OUT=bench-out/state
[[ -x /usr/bin/time ]] || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }

cargo build --release --quiet --bin aam-etl --example gen_crm
BIN=${CARGO_TARGET_DIR:-target}/release
[[ -f $DAY1/crm.parquet ]] || $BIN/examples/gen_crm --rows "$ROWS" --out "$DAY1"
[[ -f $DAY2/crm.parquet ]] || $BIN/examples/gen_crm --rows "$ROWS" --changed "$CHANGED" --out "$DAY2"
rm -rf "$OUT"; mkdir -p "$OUT"

AAM=("$BIN/aam-etl" --mapping mappings/bench.toml)
"${AAM[@]}" "$DAY1/crm.parquet" --state "$OUT/day1-state" --out "$OUT/day1" --timestamp $TS1 \
  --report "$OUT/day1.json" >/dev/null

measure() { # prints "wall rss_mb"
  local log; log=$(mktemp)
  /usr/bin/time -v "$@" >/dev/null 2>"$log" || { cat "$log"; exit 1; }
  awk -F': ' '
    /Elapsed \(wall clock\)/ { n = split($2, p, ":"); wall = (n == 3) ? p[1]*3600 + p[2]*60 + p[3] : p[1]*60 + p[2] }
    /Maximum resident/ { rss = $2 / 1024 }
    END { printf "%.2f %.0f\n", wall, rss }' "$log"
  rm -f "$log"
}
median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

PW=""; PR=""; SW=""; SR=""
for i in $(seq "$RUNS"); do
  r=$(measure "${AAM[@]}" "$DAY2/crm.parquet" --out "$OUT/plain" --timestamp $TS2 --force)
  PW+="${r% *} "; PR+="${r#* } "
  rm -rf "$OUT/state" "$OUT/day2"; cp -r "$OUT/day1-state" "$OUT/state"
  r=$(measure "${AAM[@]}" "$DAY2/crm.parquet" --state "$OUT/state" --out "$OUT/day2" --timestamp $TS2 \
    --report "$OUT/day2.json")
  SW+="${r% *} "; SR+="${r#* } "
done
pw=$(median <<<"$PW"); pr=$(median <<<"$PR"); sw=$(median <<<"$SW"); sr=$(median <<<"$SR")
echo "runs (wall s / peak MB): plain: $PW/ $PR; state: $SW/ $SR"
printf '%-22s %8s %9s\n' run wall_s peak_MB
printf '%-22s %8s %9s\n' "plain, day 2" "$pw" "$pr"
printf '%-22s %8s %9s\n' "--state, day 2" "$sw" "$sr"
printf 'state / plain: wall %.2fx, peak RSS %.2fx\n' "$(echo "$sw / $pw" | bc -l)" "$(echo "$sr / $pr" | bc -l)"

users=$(python3 -c "import json; print(json.load(open('$OUT/day1.json'))['users_written'])")
traits=$(python3 -c "import json; print(json.load(open('$OUT/day1.json'))['traits'])")
state_bytes=$(du -cb "$OUT"/day1-state/users-*.parquet | tail -1 | cut -f1)
printf 'state: %d bytes for %d users and %d traits: %.1f bytes per user, %.2f per trait\n' \
  "$state_bytes" "$users" "$traits" "$(echo "$state_bytes / $users" | bc -l)" "$(echo "$state_bytes / $traits" | bc -l)"
full=$(du -cb "$OUT"/plain/*.gz | tail -1 | cut -f1)
diff=$(du -cb "$OUT"/day2/*.gz | tail -1 | cut -f1)
printf 'day 2 delivery: %d bytes (%s) against %d for the full file: %.2f%%\n' \
  "$diff" "$(cd "$OUT/day2" && ls | tr '\n' ' ')" "$full" "$(echo "100 * $diff / $full" | bc -l)"
python3 -c "import json; print('day 2:', json.load(open('$OUT/day2.json'))['delivery'])"
