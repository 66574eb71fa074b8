#!/usr/bin/env bash
# Benchmark: aam-etl against a hand-written DuckDB job producing the same inbound content.
#
#   scripts/bench.sh [ROWS] [FORMAT]      # defaults: 10000000 parquet (or csv, ndjson)
#
# Release build; DuckDB from PyPI into a local virtual environment (.venv-bench); generated
# data in bench-data/ and outputs in bench-out/ (both git-ignored). Prints wall time, CPU time
# and peak RSS of both jobs, their ratio, the floor (reading the Parquet columns; pigz -p 2 -6
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
if [[ ! -f $DATA/crm.$FORMAT ]]; then
  target/release/examples/gen_crm --rows "$ROWS" --out "$DATA"
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

# The median of the numbers on stdin.
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

AAM=(target/release/aam-etl --mapping mappings/bench.toml "$INPUT" --out "$OUT/aam" --timestamp $TS --force)
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

# The floor: reading the used Parquet columns, and pigz -p 2 -6 of the uncompressed output.
# This shared machine's speed drifts by a third within minutes, so aam-etl and pigz are timed
# in turn, RUNS times each: the medians, and the median of the ratios of neighbouring runs.
RUNS=${RUNS:-3}
zcat "$OUT"/aam/*.gz > "$OUT/plain.txt"
: > "$OUT/pairs"
for _ in $(seq "$RUNS"); do
  read -r p _ _ < <(measure pigz -p 2 -6 -f -k "$OUT/plain.txt")
  read -r a c r < <(measure "${AAM[@]}")
  echo "$a $c $r $p $(echo "$a / $p" | bc -l)" >> "$OUT/pairs"
done
A_WALL=$(awk '{ print $1 }' "$OUT/pairs" | median)
A_CPU=$(awk '{ print $2 }' "$OUT/pairs" | median)
A_RSS=$(awk '{ print $3 }' "$OUT/pairs" | sort -g | tail -1)
P_WALL=$(awk '{ print $4 }' "$OUT/pairs" | median)
PAIR_RATIO=$(awk '{ print $5 }' "$OUT/pairs" | median)
R_WALL=NA
if [[ $FORMAT == parquet ]]; then
  read -r R_WALL _ _ < <(measure .venv-bench/bin/python -c "
import duckdb
duckdb.sql(\"SELECT sum(length(customer_id)), sum(segment_id), sum(optout_segment), sum(length(tier)), sum(is_vip::INT), sum(length(city)), sum(length(interests)), sum(age) FROM read_parquet('$INPUT')\").fetchall()")
fi

# The validator against plain decompression of the same file, in turn as above.
: > "$OUT/vpairs"
for _ in $(seq "$RUNS"); do
  read -r g _ _ < <(measure gzip -dc "$OUT"/aam/*.gz)
  read -r v c r < <(measure target/release/aam-etl validate "$OUT/aam")
  echo "$v $c $r $g $(echo "$v / $g" | bc -l)" >> "$OUT/vpairs"
done
V_WALL=$(awk '{ print $1 }' "$OUT/vpairs" | median)
V_CPU=$(awk '{ print $2 }' "$OUT/vpairs" | median)
V_RSS=$(awk '{ print $3 }' "$OUT/vpairs" | sort -g | tail -1)
G_WALL=$(awk '{ print $4 }' "$OUT/vpairs" | median)
V_RATIO=$(awk '{ print $5 }' "$OUT/vpairs" | median)

.venv-bench/bin/python scripts/compare_outputs.py "$OUT/aam" "$OUT/duckdb"

printf '\n| rows | input | aam-etl wall s | CPU s | peak RSS MB | DuckDB wall s | CPU s | peak RSS MB | DuckDB/aam-etl | floor: read / pigz s |\n'
printf '|---|---|---|---|---|---|---|---|---|---|\n'
printf '| %s | %s | %s | %s | %s | %s | %s | %s | %.2fx | %s / %s |\n' "$ROWS" "$FORMAT" \
  "$A_WALL" "$A_CPU" "$A_RSS" "$D_WALL" "$D_CPU" "$D_RSS" \
  "$(echo "$D_WALL / $A_WALL" | bc -l)" "$R_WALL" "$P_WALL"
FLOOR=$P_WALL
[[ $R_WALL != NA ]] && FLOOR=$(echo "if ($R_WALL > $P_WALL) $R_WALL else $P_WALL" | bc -l)
printf '\naam-etl / floor: %.2fx (medians; the floor: the larger of read and pigz)\n' "$(echo "$A_WALL / $FLOOR" | bc -l)"
printf 'aam-etl / pigz, run by run (aam-etl s, pigz s): %s; median %.2fx\n' \
  "$(awk '{ printf "%s%.2f/%.2f", (NR > 1 ? ", " : ""), $1, $4 }' "$OUT/pairs")" "$PAIR_RATIO"
printf 'validate: %s s wall, %s s CPU, %s MB peak RSS; gzip -dc: %s s; validate / gzip -dc run by run: %s; median %.2fx\n' \
  "$V_WALL" "$V_CPU" "$V_RSS" "$G_WALL" \
  "$(awk '{ printf "%s%.2f", (NR > 1 ? ", " : ""), $5 }' "$OUT/vpairs")" "$V_RATIO"
