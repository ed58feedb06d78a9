#!/usr/bin/env bash
# Slides at scale (the whole-slide issue, item 8): on a synthetic 16,384 x 16,384 slide (written
# once by `candela make-slide` into .cache/slides/), at 0.5 um per pixel, 64-pixel tiles, --jobs 2:
#   1. Candela's input path alone (`candela read-slide`): open, tissue, grid, every tile read
#      and resampled; tiles per second and the time to the first tile;
#   2. the same tiles through openslide-python + NumPy + Pillow on 2 processes
#      (tools/bench/read_slide_openslide.py; the venv .cache/slides/venv, made when missing);
#   3. the whole pipeline, slide to stored Grad-CAM heatmaps (`candela run`, no report): wall
#      time, tiles per second, peak RSS, time to the first item;
# and prints the ratios: Candela's reading against openslide-python's, and the share of the
# Grad-CAM run that reading, tissue and tiling take (goal: at most 10 %).
# Usage: tools/bench/bench_slides.sh [path/to/candela]   (default .build/release/candela)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
source tools/bench/demo_model.sh
BIN=${1:-.build/release/candela}
SIDE=${SLIDE_SIDE:-16384}
SLIDE=.cache/slides/bench-$SIDE.svs
VENV=.cache/slides/venv
WORK=.cache/slides/bench-work
mkdir -p .cache/slides
rm -rf "$WORK" && mkdir -p "$WORK"
if [ ! -s "$SLIDE" ]; then
  echo "writing $SLIDE (once)"
  "$BIN" make-slide --out "$SLIDE" --width "$SIDE" --height "$SIDE" --pieces 3 --lesions 8 --seed 4 >/dev/null
fi
if ! $VENV/bin/python -c "import openslide, numpy, PIL" 2>/dev/null; then
  python3 -m venv $VENV && $VENV/bin/pip install -q openslide-python==1.4.1 numpy pillow
fi
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); flags: $(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(fma|avx|avx2|avx512f|avx512bw|avx512vl|avx512_vnni|avx512_bf16)$' | tr '\n' ' ')"

"$BIN" read-slide --slide "$SLIDE" --mpp 0.5 --tile 64 --jobs 2 --json --tiles-csv "$WORK/tiles.csv" > "$WORK/candela-read.json"
$VENV/bin/python tools/bench/read_slide_openslide.py --slide "$SLIDE" --tiles "$WORK/tiles.csv" --tile 64 --jobs 2 > "$WORK/openslide-read.json"

cat > "$WORK/bench.yaml" <<YAML
pipeline: bench-slides
datasets:
  slide: {kind: slides, glob: $ROOT/$SLIDE, mpp: 0.5, tile: 64, min_tissue: 0.5}
$(demo_model_yaml)
explainers:
  gradcam: {method: gradcam}
stages:
  explain: {kind: explain}
YAML
/usr/bin/time -f "%e %M" -o "$WORK/time.txt" "$BIN" run "$WORK/bench.yaml" --db "$WORK/bench.sqlite" --jobs 2 >"$WORK/run.out" 2>"$WORK/run.err"
python3 - "$WORK" <<'PY'
import json, re, sys
w = sys.argv[1]
c = json.load(open(f"{w}/candela-read.json"))
o = json.load(open(f"{w}/openslide-read.json"))
wall, rss_kb = open(f"{w}/time.txt").read().split()
wall, rss = float(wall), int(rss_kb) / 1024
first = re.search(r"first item done ([0-9.]+) s", open(f"{w}/run.err").read())
tiles = c["tiles"]
print(f"slide {c['width']} x {c['height']}, {tiles} tiles of {c['tile']} px read at level {c['level']}")
print(f"candela read-slide: open {c['open_seconds']:.2f} s, tissue + grid {c['tissue_and_grid_seconds']:.2f} s, "
      f"read {c['read_seconds']:.2f} s = {c['tiles_per_second']:.0f} tiles/s, first tile after {c['first_tile_seconds']:.2f} s")
print(f"openslide-python {o['openslide_python']} (OpenSlide {o['openslide']}) + NumPy + Pillow, {o['jobs']} processes: "
      f"read {o['read_seconds']:.2f} s = {o['tiles_per_second']:.0f} tiles/s")
print(f"reading ratio (Candela / openslide-python, tiles per second): {c['tiles_per_second'] / o['tiles_per_second']:.2f}x")
print(f"slide -> stored Grad-CAM heatmaps: {wall:.1f} s = {tiles / wall:.0f} tiles/s, peak RSS {rss:.0f} MB, "
      f"first item after {float(first.group(1)) if first else float('nan'):.2f} s")
print(f"share of the Grad-CAM run spent reading, tissue and tiling: {c['total_seconds'] / wall:.1%} (goal <= 10%)")
PY
