#!/usr/bin/env bash
# Pipeline and report at scale (issues #6 and #7), on generated demo-like slides:
#   1. throughput of `candela run` with --jobs 1 and --jobs 2 on 1,000 items with light explainers
#      and on 300 items with integrated gradients (ratios printed);
#   2. peak RSS of a 1,000-item and a 10,000-item run (flat memory: the second must not be higher);
#   3. the time of a rerun of the unchanged 1,000-item manifest (everything comes from the cache);
#   4. the time to write the report of the 10,000-item run, and its index.html size.
# Usage: tools/bench/bench_scale.sh [path/to/candela]   (default .build/release/candela)
# The slides come from tools/make_demo_dataset.py (numpy + pillow, installed into the ignored
# venv .cache/venv-scale when missing) and are cached under .cache/scale/.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
source tools/bench/demo_model.sh
BIN=${1:-.build/release/candela}
N=${SCALE_ITEMS:-10000}
DATA=.cache/scale/slides-$N
VENV=.cache/venv-scale
if [ ! -f "$DATA/labels.csv" ]; then
  [ -x $VENV/bin/python ] || python3 -m venv $VENV
  $VENV/bin/python -c "import numpy, PIL" 2>/dev/null || $VENV/bin/pip install -q numpy pillow
  echo "generating $N slides into $DATA (once)"
  $VENV/bin/python tools/make_demo_dataset.py --seed 7 --count "$N" --out "$DATA" >/dev/null
fi
WORK=.cache/scale/work
rm -rf "$WORK" && mkdir -p "$WORK"
manifest() { # manifest LIMIT
  cat <<YAML
pipeline: scale
datasets:
  slides: {csv: $ROOT/$DATA/labels.csv$( [ "$1" != all ] && echo ", limit: $1")}
$(demo_model_yaml)
explainers:
  gradcam: {method: gradcam}
  saliency: {method: saliency}
  lrp: {method: lrp}
stages:
  predict: {kind: predict}
  explain: {kind: explain}
  evaluate: {kind: evaluate, metrics: [pointing_game]}
YAML
}
manifest 1000 > "$WORK/scale-1000.yaml"
manifest all > "$WORK/scale-all.yaml"
# A compute-heavy variant: integrated gradients (32 steps) instead of LRP, 300 items.
sed 's/limit: 1000/limit: 300/; s/  lrp: {method: lrp}/  ig: {method: integratedgradients, params: {steps: 32}}/' \
  "$WORK/scale-1000.yaml" > "$WORK/heavy-300.yaml"
run() { # run NAME MANIFEST JOBS DB -> prints seconds and peak RSS (KB)
  /usr/bin/time -f "%e %M" -o "$WORK/$1.time" "$BIN" run "$2" --jobs "$3" --db "$4" >/dev/null 2>"$WORK/$1.log"
  cat "$WORK/$1.time"
}
read -r t1 rss1 <<<"$(run jobs1 "$WORK/scale-1000.yaml" 1 "$WORK/jobs1.sqlite")"
read -r t2 rss2 <<<"$(run jobs2 "$WORK/scale-1000.yaml" 2 "$WORK/jobs2.sqlite")"
read -r tr _ <<<"$(run rerun "$WORK/scale-1000.yaml" 2 "$WORK/jobs2.sqlite")"
read -r th1 _ <<<"$(run heavy1 "$WORK/heavy-300.yaml" 1 "$WORK/heavy1.sqlite")"
read -r th2 _ <<<"$(run heavy2 "$WORK/heavy-300.yaml" 2 "$WORK/heavy2.sqlite")"
read -r tn rssn <<<"$(run all "$WORK/scale-all.yaml" 2 "$WORK/all.sqlite")"
/usr/bin/time -f "%e %M" -o "$WORK/report.time" "$BIN" report --db "$WORK/all.sqlite" --out "$WORK/report" >/dev/null
read -r trep rssrep < "$WORK/report.time"
/usr/bin/time -f "%e %M" -o "$WORK/report2.time" "$BIN" report --db "$WORK/all.sqlite" --out "$WORK/report" >/dev/null
read -r trep2 _ < "$WORK/report2.time"
index=$(stat -c %s "$WORK/report/index.html")
largest=$(ls -S "$WORK"/report/gallery-*.html | head -1 | xargs stat -c %s)
items=$(sqlite3 "$WORK/all.sqlite" "select count(*) from items")
awk -v t1="$t1" -v t2="$t2" -v th1="$th1" -v th2="$th2" -v tr="$tr" -v tn="$tn" -v r1="$rss1" -v r2="$rss2" -v rn="$rssn" -v trep="$trep" -v trep2="$trep2" \
    -v rrep="$rssrep" -v idx="$index" -v largest="$largest" -v items="$items" 'BEGIN {
  printf "scale: 1,000 items, 3 explainers: --jobs 1 %.1f s (%.0f items/s), --jobs 2 %.1f s (%.0f items/s): ratio %.2fx (goal >= 1.8x)\n", t1, 1000/t1, t2, 1000/t2, t1/t2
  printf "scale: 300 items with integrated gradients (32 steps): --jobs 1 %.1f s, --jobs 2 %.1f s: ratio %.2fx (goal >= 1.8x)\n", th1, th2, th1/th2
  printf "scale: rerun of the unchanged 1,000-item manifest: %.1f s (every heatmap from the store)\n", tr
  printf "scale: peak RSS --jobs 2: 1,000 items %.0f MB, %d items %.0f MB (ratio %.2f; goal <= 1.0 plus noise)\n", r2/1024, items, rn/1024, rn/r2
  printf "scale: %d-item run %.1f s; report %.1f s (goal <= 60 s), rewrite %.1f s, peak RSS %.0f MB; index.html %.0f KB (goal <= 2 MB), largest gallery page %.0f KB\n", items, tn, trep, trep2, rrep/1024, idx/1024, largest/1024
}'
