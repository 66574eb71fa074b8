#!/usr/bin/env bash
# Benchmark: aam-etl against a hand-written DuckDB job producing the same inbound content.
#
#   scripts/bench.sh [ROWS] [FORMAT]      # defaults: 10000000 parquet (or csv, ndjson)
#
# Release build; DuckDB from PyPI into a local virtual environment (.venv-bench); generated
# data in bench-data/ and outputs in bench-out/ (both git-ignored). Prints wall time, CPU time
# and peak RSS of both jobs, their ratio, the floor (reading the used columns; pigz -p 2 -6
# of the uncompressed output) and checks that both outputs hold the same users and traits.
# aam-etl and pigz (and validate and gzip -dc) are timed in turn RUNS times (default 3): the
# figures are medians, the peak RSS the largest. Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."

ROWS=${1:-10000000}
FORMAT=${2:-parquet}
TS=1700000000
DATA=bench-data/$ROWS
OUT=bench-out
mkdir -p "$DATA" "$OUT"

if [[ ! -x .venv-bench/bin/python ]]; then
  python3 -m venv .venv-bench
  .venv-bench/bin/pip install --quiet duckdb
fi
command -v pigz >/dev/null || { apt-get update -qq && apt-get install -y -qq pigz >/dev/null; }
[[ -x /usr/bin/time ]] || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }

cargo build --release --quiet --bin aam-etl --example gen_crm
BIN=${CARGO_TARGET_DIR:-target}/release
if [[ ! -f $DATA/crm.$FORMAT ]]; then
  $BIN/examples/gen_crm --rows "$ROWS" --out "$DATA"
fi
INPUT=$DATA/crm.$FORMAT

# Runs a command under /usr/bin/time -v; prints "wall cpu rss_mb".
measure() {
  local log; log=$(mktemp)
  /usr/bin/time -v "$@" >/dev/null 2>"$log" || { cat "$log"; exit 1; }
  awk -F': ' '
    /Elapsed \(wall clock\)/ { n = split($2, p, ":"); wall = (n == 3) ? p[1]*3600 + p[2]*60 + p[3] : p[1]*60 + p[2] }
    /User time/ { cpu += $2 } /System time/ { cpu += $2 }
    /Maximum resident/ { rss = $2 / 1024 }
    END { printf "%.2f %.2f %.0f\n", wall, cpu, rss }' "$log"
  rm -f "$log"
}

# The median of the numbers on stdin (of an even count, the lower middle one).
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

AAM=($BIN/aam-etl --mapping mappings/bench.toml "$INPUT" --out "$OUT/aam" --timestamp $TS --force)
rm -rf "$OUT/aam" "$OUT/duckdb"; mkdir -p "$OUT/duckdb"
"${AAM[@]}" >/dev/null   # the output, for the floor and the comparison; the file in the page cache

case $FORMAT in
  parquet) SRC="read_parquet('$INPUT')" ;;
  csv) SRC="read_csv('$INPUT', header=true, types={'customer_id':'VARCHAR','interests':'VARCHAR'})" ;;
  ndjson) SRC="read_json('$INPUT', format='newline_delimited')" ;;
esac
cat > "$OUT/duckdb.sql" <<SQL
CREATE TEMP VIEW src AS SELECT * FROM $SRC;
COPY (
  WITH adds AS (
    SELECT customer_id AS u, 'd_sid=' || segment_id AS t FROM src WHERE segment_id IS NOT NULL
    UNION SELECT customer_id, 'd_sid=' || CASE tier WHEN 'gold' THEN 111 WHEN 'silver' THEN 112 WHEN 'bronze' THEN 113 END
      FROM src WHERE tier IN ('gold', 'silver', 'bronze')
    UNION SELECT customer_id, 'd_sid=200' FROM src WHERE is_vip
    UNION SELECT customer_id, 'city=' || CASE WHEN regexp_full_match(city, '[A-Za-z0-9_.-]+') THEN city ELSE '"' || city || '"' END
      FROM src WHERE city IS NOT NULL AND city <> ''
    UNION SELECT customer_id, 'interest=' || i FROM (SELECT customer_id, unnest(string_split(interests, '|')) AS i FROM src) WHERE i <> ''
    UNION SELECT customer_id, 'age=' || age FROM src WHERE age IS NOT NULL
  ),
  removes AS (
    SELECT customer_id AS u, optout_segment AS s FROM src WHERE optout_segment IS NOT NULL
    EXCEPT SELECT customer_id, segment_id FROM src WHERE segment_id IS NOT NULL
  ),
  t AS (SELECT u, t FROM adds UNION ALL SELECT u, 'd_unsid=' || s FROM removes)
  SELECT u || chr(9) || string_agg(t, ',') FROM t GROUP BY u
) TO '$OUT/duckdb/ftp_dpm_21_$TS.sync.gz' (FORMAT csv, HEADER false, QUOTE '', ESCAPE '', DELIMITER '\x01', COMPRESSION gzip);
SQL
read -r D_WALL D_CPU D_RSS < <(measure .venv-bench/bin/python -c "
import duckdb, sys
duckdb.sql(open('$OUT/duckdb.sql').read())")

# This shared machine's speed drifts within minutes, so a job and its yardstick are timed in
# turn, RUNS times each. `in_turn FILE YARDSTICK JOB` (names of command arrays) writes a line
# "job_wall job_cpu job_rss yardstick_wall job/yardstick" per run to FILE; `col FILE N`
# prints the median of column N (peak RSS: `peak FILE`, the largest).
RUNS=${RUNS:-3}
in_turn() {
  local -n yardstick=$2 job=$3
  : > "$1"
  for _ in $(seq "$RUNS"); do
    read -r y _ _ < <(measure "${yardstick[@]}")
    read -r w c r < <(measure "${job[@]}")
    echo "$w $c $r $y $(echo "$w / $y" | bc -l)" >> "$1"
  done
}
col() { awk -v n="$2" '{ print $n }' "$1" | median; }
peak() { awk '{ print $3 }' "$1" | sort -g | tail -1; }

# The floor: reading the used columns, and pigz -p 2 -6 of the uncompressed output.
zcat "$OUT"/aam/*.gz > "$OUT/plain.txt"
PIGZ=(pigz -p 2 -6 -f -k "$OUT/plain.txt")
in_turn "$OUT/pairs" PIGZ AAM
A_WALL=$(col "$OUT/pairs" 1) A_CPU=$(col "$OUT/pairs" 2) A_RSS=$(peak "$OUT/pairs")
P_WALL=$(col "$OUT/pairs" 4) PAIR_RATIO=$(col "$OUT/pairs" 5)
# The read: DuckDB reading the used columns of the export, in whatever format (for CSV and
# NDJSON the text parsed, the way Polars' scan reads them in the issue's table).
read -r R_WALL _ _ < <(measure .venv-bench/bin/python -c "
import duckdb
duckdb.sql(\"SELECT sum(length(customer_id)), sum(segment_id), sum(optout_segment), sum(length(tier)), sum(is_vip::INT), sum(length(city)), sum(length(interests)), sum(age) FROM $SRC\").fetchall()")

# The validator against plain decompression of the same file, in turn as above.
GUNZIP=(gzip -dc "$OUT"/aam/*.gz)
VALIDATE=($BIN/aam-etl validate "$OUT/aam")
in_turn "$OUT/vpairs" GUNZIP VALIDATE
V_WALL=$(col "$OUT/vpairs" 1) V_CPU=$(col "$OUT/vpairs" 2) V_RSS=$(peak "$OUT/vpairs")
G_WALL=$(col "$OUT/vpairs" 4) V_RATIO=$(col "$OUT/vpairs" 5)

.venv-bench/bin/python scripts/compare_outputs.py "$OUT/aam" "$OUT/duckdb"

printf '\n| rows | input | aam-etl wall s | CPU s | peak RSS MB | DuckDB wall s | CPU s | peak RSS MB | DuckDB/aam-etl | floor: read / pigz s |\n'
printf '|---|---|---|---|---|---|---|---|---|---|\n'
printf '| %s | %s | %s | %s | %s | %s | %s | %s | %.2fx | %s / %s |\n' "$ROWS" "$FORMAT" \
  "$A_WALL" "$A_CPU" "$A_RSS" "$D_WALL" "$D_CPU" "$D_RSS" \
  "$(echo "$D_WALL / $A_WALL" | bc -l)" "$R_WALL" "$P_WALL"
FLOOR=$(echo "if ($R_WALL > $P_WALL) $R_WALL else $P_WALL" | bc -l)
printf '\naam-etl / floor: %.2fx (medians; the floor: the larger of read and pigz)\n' "$(echo "$A_WALL / $FLOOR" | bc -l)"
printf 'aam-etl / pigz, run by run (aam-etl s, pigz s): %s; median %.2fx\n' \
  "$(awk '{ printf "%s%.2f/%.2f", (NR > 1 ? ", " : ""), $1, $4 }' "$OUT/pairs")" "$PAIR_RATIO"
printf 'validate: %s s wall, %s s CPU, %s MB peak RSS; gzip -dc: %s s; validate / gzip -dc run by run: %s; median %.2fx\n' \
  "$V_WALL" "$V_CPU" "$V_RSS" "$G_WALL" \
  "$(awk '{ printf "%s%.2f", (NR > 1 ? ", " : ""), $5 }' "$OUT/vpairs")" "$V_RATIO"
