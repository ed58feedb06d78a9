#!/usr/bin/env bash
# Localization benchmark (make bench): does each method's heatmap point at the lesion?
#
# Every explainer, LIME and RISE in their default (adaptive) and parity modes side by side, runs
# through `candela run` on the demo's held-out abnormal slides (datasets/demo, seed 2026: the
# model was trained on other generated slides, tools/train_demo_model.py), explaining the
# abnormal class. Then, from the heatmaps Candela exports (model-input size, 64 px):
#   - pointing game with a 3 px tolerance: the heatmap's maximum within 3 px of the lesion mask
#     (the mask brought to 64 px as the item job does: 2x2 mean, then >= half);
#   - energy in lesion: the share of the heatmap's mass on the lesion (Candela's
#     energy_pointing_game metric, from the store);
#   - time per heatmap (ms, from the store) and, for LIME and RISE, the median stability and
#     forward passes; the adaptive modes' time as a ratio of their parity mode's.
# Usage: tools/bench/bench_localization.sh CANDELA
# Needs NumPy (the venv .cache/slides/venv, made when missing, as bench_slides.sh does).
set -euo pipefail
CANDELA=$(realpath "$1")
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$ROOT/.cache/bench-localization
VENV=$ROOT/.cache/slides/venv
rm -rf "$WORK" && mkdir -p "$WORK"
if ! $VENV/bin/python -c "import numpy, PIL" 2>/dev/null; then
  python3 -m venv $VENV && $VENV/bin/pip install -q numpy pillow
fi
awk -F, -v d="$ROOT/datasets/demo" 'NR == 1 { print; next } $2 == "abnormal" { print d "/" $1 "," $2 "," d "/" $3 }' \
  "$ROOT/datasets/demo/labels.csv" > "$WORK/abnormal.csv"
cat > "$WORK/localization.yaml" <<YAML
pipeline: localization
datasets:
  abnormal: {csv: $WORK/abnormal.csv}
models:
  demo-cnn:
    onnx: $ROOT/models/demo.onnx
    classes: [normal, abnormal]
    preprocessing: {size: [64, 64], scale: 0.00392156862745098, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25]}
    cam_layer: /block3/relu/Relu_output_0
explainers:
  gradcam: {method: gradcam}
  gradcam++: {method: gradcam++}
  scorecam: {method: scorecam}
  integrated-gradients: {method: integratedgradients, params: {steps: 32, rule: gausslegendre}}
  saliency: {method: saliency}
  lrp: {method: lrp, params: {composite: epsilon-plus-flat}}
  occlusion: {method: occlusion, params: {window: "3,16,16", stride: "3,8,8"}}
  lime: {method: lime}
  lime-parity: {method: lime, params: {mode: lime}}
  rise: {method: rise}
  rise-paper: {method: rise, params: {mode: paper}}
stages:
  explain:
    kind: explain
    explainers: [gradcam, gradcam++, scorecam, integrated-gradients, saliency, lrp, occlusion, lime, lime-parity, rise, rise-paper]
    target: label
  evaluate: {kind: evaluate, metrics: [energy_pointing_game]}
YAML
"$CANDELA" run "$WORK/localization.yaml" --db "$WORK/localization.sqlite" --jobs 2 -q || true
"$CANDELA" export --db "$WORK/localization.sqlite" --format jsonl --arrays "$WORK/maps" --out "$WORK/heatmaps.jsonl"
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs); flags: $(grep -m1 flags /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|avx512f|fma)$' | xargs)"
$VENV/bin/python - "$WORK" "$ROOT" <<'PY'
import json, sqlite3, sys
import numpy as np
from PIL import Image
work, root = sys.argv[1], sys.argv[2]
def lesion(path):
    m = np.asarray(Image.open(path).convert("L"), dtype=np.float64)
    h, w = m.shape
    return m.reshape(64, h // 64, 64, w // 64).mean(axis=(1, 3)) >= 127.5
def hit(heat, mask, tol=3):
    py, px = np.unravel_index(np.argmax(heat), heat.shape)
    ys, xs = np.nonzero(mask)
    return bool(((ys - py) ** 2 + (xs - px) ** 2 <= tol * tol).any())
rows = [json.loads(l) for l in open(f"{work}/heatmaps.jsonl")]
db = sqlite3.connect(f"{work}/localization.sqlite")
seconds = dict(db.execute("SELECT explainer, avg(seconds) FROM attributions GROUP BY explainer"))
diag = {}
for e, d in db.execute("SELECT explainer, diagnostics FROM attributions WHERE diagnostics IS NOT NULL"):
    diag.setdefault(e, []).append(json.loads(d))
stats = {}
masks = {}
for r in rows:
    e = r["explainer"]
    mask_path = next(l.split(",")[2].strip() for l in open(f"{work}/abnormal.csv") if l.startswith(r["path"] + ","))
    mask = masks.setdefault(mask_path, lesion(mask_path))
    heat = np.load(f"{work}/maps/{r['array']}")
    s = stats.setdefault(e, {"hits": 0, "n": 0, "energy": []})
    s["hits"] += hit(heat, mask)
    s["n"] += 1
    if r["metrics"].get("energy_pointing_game") is not None:
        s["energy"].append(r["metrics"]["energy_pointing_game"])
print(f"{'explainer':22} {'pointing game (3 px)':>21} {'energy in lesion':>17} {'ms/heatmap':>11} {'stability':>10} {'samples':>8}")
for e in sorted(stats):
    s = stats[e]
    d = diag.get(e, [])
    stab = f"{np.median([x['stability'] for x in d]):.3f}" if d else "-"
    samp = f"{np.median([x['samples'] for x in d]):.0f}" if d else "-"
    print(f"{e:22} {s['hits']:>4}/{s['n']:<3} = {s['hits'] / s['n']:.2f}      {np.mean(s['energy']):>15.3f} {1000 * seconds[e]:>11.1f} {stab:>10} {samp:>8}")
for new, old in [("lime", "lime-parity"), ("rise", "rise-paper")]:
    print(f"time ratio {new} (adaptive) / {old}: {seconds[new] / seconds[old]:.2f}x")
PY
