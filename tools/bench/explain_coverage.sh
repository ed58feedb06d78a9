#!/usr/bin/env bash
# Runs every method through `candela explain` on every model in a folder (default .cache/models:
# the torchvision exports of tools/bench/export_models.py) and prints one line per pair: status,
# seconds, and the attribution's shape. Parameters are cut down (fewer steps, samples, windows)
# so that the whole grid finishes in minutes; the point is that each method runs on each
# architecture and writes a finite map, not its speed (see bench_methods.py for that).
#
# Usage: tools/bench/explain_coverage.sh [CANDELA] [MODELS_DIR] [IMAGE]
set -u
CANDELA=${1:-.build/release/candela}
MODELS=${2:-.cache/models}
IMAGE=${3:-Tests/Fixtures/images/rgb8.png}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

declare -A PARAMS=(
  [gradient]="" [saliency]="" [inputxgradient]="" [guidedbackprop]="" [deconvnet]=""
  [integratedgradients]="--set steps=8" [smoothgrad]="--set samples=4"
  [gradcam]="" [gradcam++]="" [scorecam]="--set batch=32"
  [occlusion]="--set window=3,56,56 --set stride=3,56,56" [rise]="--set masks=64"
  [lime]="--set samples=64 --set segments=25" [lrp]="" [activation-max]="--set steps=4"
)
METHODS="gradient saliency inputxgradient integratedgradients smoothgrad guidedbackprop deconvnet gradcam gradcam++ scorecam occlusion rise lime lrp activation-max"
failures=0
printf '%-18s %-20s %-6s %8s  %s\n' model method status seconds detail
for model in "$MODELS"/*.onnx; do
  name=$(basename "$model" .onnx)
  for method in $METHODS; do
    start=$(date +%s.%N)
    # shellcheck disable=SC2086
    if msg=$("$CANDELA" explain --model "$model" --input "$IMAGE" --method "$method" ${PARAMS[$method]} \
              --out "$OUT/a.npy" --heatmap "$OUT/h.npy" 2>&1); then
      status=ok
      detail=$(python3 - "$OUT/a.npy" "$OUT/h.npy" <<'PY'
import struct, sys
def npy(path):
    with open(path, 'rb') as f:
        assert f.read(6) == b'\x93NUMPY'
        major = f.read(2)[0]
        n = struct.unpack('<H' if major == 1 else '<I', f.read(2 if major == 1 else 4))[0]
        header = eval(f.read(n).decode())
        data = f.read()
    count = len(data) // 4
    values = struct.unpack('<%df' % count, data)
    return header['shape'], values
shape, a = npy(sys.argv[1])
hshape, h = npy(sys.argv[2])
finite = all(v == v and abs(v) != float('inf') for v in a)
print(f"attribution {shape} finite={finite} heatmap {hshape} range [{min(h):.2f}, {max(h):.2f}]")
if not finite: sys.exit(1)
PY
) || { status=FAIL; failures=$((failures + 1)); }
    else
      status=FAIL
      failures=$((failures + 1))
      detail=$(echo "$msg" | tail -1)
    fi
    printf '%-18s %-20s %-6s %8.2f  %s\n' "$name" "$method" "$status" "$(echo "$(date +%s.%N) - $start" | bc)" "$detail"
  done
done
echo "failures: $failures"
[ "$failures" -eq 0 ]
