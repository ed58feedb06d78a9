#!/usr/bin/env bash
# The report's slide viewer at scale (the slide report issue): on a synthetic 100,000 x 80,000
# slide (0.25 um per pixel; four tissue pieces covering about 40 % of it; written once by
# `candela make-slide` into .cache/slides/, about 4 minutes on 2 cores, 2 GB), `candela
# read-slide --viewer` writes the deep-zoom pyramid the report shows (256-pixel JPEG tiles on
# tissue, down to the model's 0.5 um per pixel) and prints the tiles written per second (goal:
# at least 200 on 2 cores) and the pyramid's size against the slide file's own JPEG pyramid
# (goal: at most 1.5 x). Then the whole report on that slide: `candela run` (Grad-CAM on every
# 224-pixel tile, resized to the demo model's 64 pixels, no report) and `candela report` timed on
# its own, with the report folder's size against the slide file (the same 1.5 x goal) and the
# report's own log of its viewer and heatmap pyramids.
# Usage: tools/bench/bench_viewer.sh [path/to/candela]   (default .build/release/candela)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
source tools/bench/demo_model.sh
BIN=${1:-.build/release/candela}
SLIDE=.cache/slides/bench-100k.svs
WORK=.cache/slides/viewer-work
mkdir -p .cache/slides
if [ ! -s "$SLIDE" ]; then
  echo "writing $SLIDE (once)"
  "$BIN" make-slide --out "$SLIDE.part" --width 100000 --height 80000 --pieces 4 --piece-size 20000x56000 --lesions 5 --seed 9 >/dev/null
  mv "$SLIDE.part" "$SLIDE"
fi
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); flags: $(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(fma|avx|avx2|avx512f|avx512bw|avx512vl|avx512_vnni|avx512_bf16)$' | tr '\n' ' ')"
rm -rf "$WORK"
/usr/bin/time -f "%e %M" -o "$WORK.time" "$BIN" read-slide --slide "$SLIDE" --mpp 0.5 --tile 224 --jobs 2 --viewer "$WORK" --json > "$WORK.json"
python3 - "$WORK.json" "$WORK.time" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
seconds, rss = open(sys.argv[2]).read().split()
v = r["viewer"]
print(f"slide {r['width']} x {r['height']}: tissue + grid {r['tissue_and_grid_seconds']:.2f} s, {r['tiles']} model tiles read at {r['tiles_per_second']:.0f} tiles/s")
print(f"viewer pyramid: {v['tiles']} tiles in {v['seconds']:.1f} s = {v['tiles_per_second']:.0f} tiles/s (goal >= 200); "
      f"{v['glass_left_out']} tiles on glass left out; {v['zooms']} zooms")
print(f"viewer size {v['bytes'] / 1e6:.1f} MB / slide file {v['slide_bytes'] / 1e6:.1f} MB = {v['bytes'] / v['slide_bytes']:.3f} (goal <= 1.5); "
      f"peak RSS {int(rss) / 1024:.0f} MB, {float(seconds):.1f} s in all")
PY

cat > "$WORK.yaml" <<YAML
pipeline: bench-viewer
datasets:
  slide: {kind: slides, glob: $ROOT/$SLIDE, mpp: 0.5, tile: 224, min_tissue: 0.5}
$(demo_model_yaml)
explainers:
  gradcam: {method: gradcam}
stages:
  explain: {kind: explain, target: 1}
YAML
rm -rf "$WORK.sqlite" "$WORK-report"
/usr/bin/time -f "%e %M" -o "$WORK.run-time" "$BIN" run "$WORK.yaml" --db "$WORK.sqlite" --jobs 2 > "$WORK.run-out" 2>&1
/usr/bin/time -f "%e %M" -o "$WORK.report-time" "$BIN" report --db "$WORK.sqlite" --out "$WORK-report" > "$WORK.report-out" 2>&1
grep -E "viewer pyramid|heatmap pyramids" "$WORK.report-out" || true
python3 - "$WORK" "$SLIDE" <<'PY'
import os, sys
work, slide = sys.argv[1], sys.argv[2]
run_s, run_kb = open(f"{work}.run-time").read().split()
rep_s, rep_kb = open(f"{work}.report-time").read().split()
size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(f"{work}-report") for f in fs)
files = sum(len(fs) for _, _, fs in os.walk(f"{work}-report"))
slide_bytes = os.path.getsize(slide)
print(f"run (slide -> stored Grad-CAM heatmaps): {float(run_s):.1f} s, peak RSS {int(run_kb) / 1024:.0f} MB")
print(f"report: {float(rep_s):.1f} s, peak RSS {int(rep_kb) / 1024:.0f} MB; {files} files, {size / 1e6:.1f} MB "
      f"/ slide file {slide_bytes / 1e6:.1f} MB = {size / slide_bytes:.3f} (goal <= 1.5)")
PY
