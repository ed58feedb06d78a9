#!/usr/bin/env bash
# Export at scale (make bench): `candela export` on synthetic stores of 10,000 and 100,000
# heatmap rows, as CSV and as JSON Lines; prints the time, peak memory and the 100k/10k ratios
# (linear: time ratio near 10, memory ratio near 1).
#
# The stores are grown from a real one: a two-explainer run on one demo slide, then its item,
# prediction, heatmaps and metrics copied N times by SQL (paths and cache keys made unique).
# Usage: tools/bench/bench_export.sh CANDELA
set -euo pipefail
CANDELA=$(realpath "$1")
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$ROOT/.cache/bench-export
rm -rf "$WORK" && mkdir -p "$WORK"
printf 'path,label,mask\n%s,abnormal,%s\n' "$ROOT/datasets/demo/images/slide_001.png" "$ROOT/datasets/demo/masks/slide_001.png" > "$WORK/one.csv"
cat > "$WORK/one.yaml" <<YAML
pipeline: export-bench
datasets:
  d: {csv: $WORK/one.csv}
models:
  m:
    onnx: $ROOT/models/demo.onnx
    classes: [normal, abnormal]
    preprocessing: {size: [64, 64], mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25]}
explainers:
  gradcam: {method: gradcam}
  saliency: {method: saliency}
stages:
  explain: {kind: explain}
  evaluate: {kind: evaluate, metrics: [pointing_game, energy_pointing_game]}
YAML
"$CANDELA" run "$WORK/one.yaml" --db "$WORK/one.sqlite" -q > /dev/null

# grow STORE ITEMS: the run's one item copied to ITEMS items (2 heatmap rows each).
grow() {
  local db=$1 n=$2
  cp "$WORK/one.sqlite" "$db"
  local cols; cols=$(sqlite3 "$db" "SELECT group_concat(name, ', ') FROM pragma_table_info('items') WHERE name NOT IN ('id', 'path')")
  local acols; acols=$(sqlite3 "$db" "SELECT group_concat(name, ', ') FROM pragma_table_info('attributions') WHERE name NOT IN ('id', 'item_id', 'cache_key')")
  sqlite3 "$db" <<SQL
PRAGMA foreign_keys = OFF;
BEGIN;
CREATE TEMP TABLE n AS WITH RECURSIVE c(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM c WHERE k < $n - 1) SELECT k FROM c;
INSERT INTO items(path, $cols) SELECT i.path || '#' || n.k, $(sed -E 's/([a-z_]+)/i.\1/g' <<< "$cols") FROM items i, n WHERE i.id = 1;
CREATE TEMP TABLE map AS SELECT id AS new_id, CAST(substr(path, instr(path, '#') + 1) AS INTEGER) AS k FROM items WHERE id > 1;
INSERT INTO predictions SELECT m.new_id, p.model_hash, p.class_index, p.class_name, p.probability, p.probabilities FROM predictions p, map m WHERE p.item_id = 1;
INSERT INTO attributions(item_id, cache_key, $acols) SELECT m.new_id, a.cache_key || '-' || m.k, $(sed -E 's/([a-z_]+)/a.\1/g' <<< "$acols") FROM attributions a, map m WHERE a.item_id = 1;
INSERT INTO metrics SELECT m.new_id, x.model_hash, x.explainer, x.name, x.value FROM metrics x, map m WHERE x.item_id = 1;
COMMIT;
SQL
}
measure() { # measure DB FORMAT -> "seconds peak_kB rows"
  local out=$WORK/out.$2
  /usr/bin/time -f "%e %M" -o "$WORK/time" "$CANDELA" export --db "$1" --format "$2" --out "$out" 2>/dev/null
  local header=0
  [ "$2" != csv ] || header=1
  echo "$(cat "$WORK/time") $(($(wc -l < "$out") - header))"
}
[ -x /usr/bin/time ] || { echo "bench_export: needs /usr/bin/time (Debian package time)" >&2; exit 1; }
grow "$WORK/10k.sqlite" 5000
grow "$WORK/100k.sqlite" 50000
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs)"
for format in csv jsonl; do
  read -r t1 m1 r1 <<< "$(measure "$WORK/10k.sqlite" $format)"
  read -r t2 m2 r2 <<< "$(measure "$WORK/100k.sqlite" $format)"
  awk -v f=$format -v t1="$t1" -v m1="$m1" -v r1="$r1" -v t2="$t2" -v m2="$m2" -v r2="$r2" 'BEGIN {
    printf "export %s: %d rows %.2f s %.0f MB; %d rows %.2f s %.0f MB (%.0f rows/s); ratios 100k/10k: time %.1fx (linear: 10), memory %.2fx (goal: under 10 s, constant memory)\n",
      f, r1, t1, m1 / 1024, r2, t2, m2 / 1024, r2 / (t2 > 0 ? t2 : 0.01), t2 / (t1 > 0 ? t1 : 0.01), m2 / m1 }'
done
