#!/usr/bin/env python3
"""Planted-shortcut ("Clever Hans") fixtures for SpRAy (spectral relevance analysis,
Lapuschkin et al. 2019). Tooling only; Candela never runs Python.

Writes Tests/Fixtures/spray/:

    clean/    64 synthetic H&E-like slides (32 normal, 32 abnormal; seed 2027) without any tag:
              images/*.png, masks/*.png (lesion masks), labels.csv (path,label,mask)
    tagged/   the same 64 slides, but 24 of the 32 abnormal ones carry the planted artefact:
              a 12x12 px dark-green "pen mark" square with a 1 px pale border in the top-left
              corner (pixels x, y in [4, 16) at 128 px). Normal slides never carry it. The 40
              slides without a tag are byte-identical to clean/, so tagged/labels.csv points at
              ../clean/images/ for them (Candela resolves CSV paths relative to the CSV);
              --full-copies writes every image into tagged/images/ instead. masks/ holds the
              lesion masks only, never the tag.
    tagged.onnx   DemoNet (tools/train_demo_model.py) trained on 3000 generated slides drawn like
                  tagged/ (seed 3001): it learns to use the tag.
    clean.onnx    the same architecture and recipe, trained on the very same 3000 slides without tags.
    meta.json     the tag's box, which test slides are tagged, and every number measured here.
    README.md     what the files are, how they were made, the numbers.

The shortcut: the abnormal slides that carry the tag also have faint lesions (the lesions are
blended into the same slide without lesions at --lesion-contrast, 0.35 by default) -- think of one
lab whose slides are weakly stained and marked with a pen. In training, the tag is perfectly
predictive (it only ever appears on abnormal slides) and easier to see than those faint lesions,
so the tagged model learns "green square => abnormal"; the clean model, which sees the same slides
without tags, has to learn the faint lesions. Everything is deterministic in the seeds below
(slide generator: tools/make_demo_dataset.py, imported; model, preprocessing, training, ONNX export
and op check: tools/train_demo_model.py, imported).

Exact command used for the committed files (from the repository root):

    python3 -m venv .cache/venv-spray
    .cache/venv-spray/bin/pip install /opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl \\
        numpy pillow onnx onnxruntime
    .cache/venv-spray/bin/python tools/make_spray_fixtures.py

Versions used: Python 3.11.7, torch 2.13.0+cpu, numpy 2.4.6, pillow 13.0.0, onnx 1.23.2,
onnxruntime 1.32.0 (2 CPU threads). Bit-identical weights need the same torch version and CPU.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import sys
import time

sys.dont_write_bytecode = True  # keep tools/__pycache__ out of the tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from PIL import Image  # noqa: E402

import make_demo_dataset as dd  # noqa: E402
import train_demo_model as tdm  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZE = dd.SIZE  # 128
SCALE = SIZE // tdm.INPUT_SIZE  # 2: the 128 -> 64 bilinear resize is the mean of each 2x2 block

# The planted artefact: x0, y0, x1, y1 (x1, y1 exclusive) at 128 px. At the 64 px model input it
# covers [2, 8) x [2, 8); its outer ring there mixes border and interior colours.
TAG_BOX = (4, 4, 16, 16)
TAG_BORDER = (226, 240, 222)  # 1 px pale border
TAG_INK = (34, 96, 52)        # dark green interior
TAG_SHARE = 0.75              # of the abnormal slides
DILATE = 4                    # px at 128: relevance regions are the tag box / lesion masks dilated by this

TEST_SEED, TEST_COUNT = 2027, 64      # committed test sets (demo set uses 2026)
TRAIN_SEED, TRAIN_COUNT = 3001, 3000  # not committed
EVAL_SEED, EVAL_COUNT = 3002, 1000    # not committed (held-out numbers)


# ----------------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------------
def tagged_flags(seed: int, labels: np.ndarray, share: float = TAG_SHARE) -> np.ndarray:
    """Exactly round(share * #abnormal) abnormal slides, chosen deterministically, are tagged."""
    ab = np.flatnonzero(labels == 1)
    rng = np.random.default_rng([seed, 0x7A6])
    pick = rng.permutation(ab)[: int(round(share * len(ab)))]
    flags = np.zeros(len(labels), dtype=bool)
    flags[pick] = True
    return flags


def paste_tag(img: np.ndarray) -> np.ndarray:
    """Copy of a uint8 (128,128,3) slide with the tag in the top-left corner."""
    out = img.copy()
    x0, y0, x1, y1 = TAG_BOX
    out[y0:y1, x0:x1] = TAG_BORDER
    out[y0 + 1:y1 - 1, x0 + 1:x1 - 1] = TAG_INK
    return out


def tag_region(dilate: int = DILATE) -> np.ndarray:
    """Boolean (128,128): the tag box dilated by `dilate` px (clipped to the image)."""
    x0, y0, x1, y1 = TAG_BOX
    r = np.zeros((SIZE, SIZE), dtype=bool)
    r[max(0, y0 - dilate):y1 + dilate, max(0, x0 - dilate):x1 + dilate] = True
    return r


def dilate_masks(masks_u8: np.ndarray, dilate: int = DILATE) -> np.ndarray:
    """Boolean (N,128,128): masks dilated by a (2*dilate+1)^2 square."""
    m = torch.from_numpy((masks_u8 > 0).astype(np.float32))[:, None]
    return (F.max_pool2d(m, 2 * dilate + 1, 1, dilate)[:, 0] > 0).numpy()


def generate_set(seed: int, count: int, contrast: float):
    """Balanced slides drawn like the demo set (same labels, same per-slide rng), of which the
    tagged abnormal ones get faint lesions: inside the lesion mask dilated by 2 px (which covers
    the blobs' soft edges) the abnormal slide is blended with the same slide generated without
    blobs (same rng stream up to the blobs): contrast * abnormal + (1 - contrast) * normal.

    Returns clean images (N,128,128,3) uint8 (no tags), masks (N,128,128) uint8, labels (N,),
    tagged flags (N,). The tagged images are paste_tag(clean) where flagged."""
    labels = dd.dataset_labels(seed, count)
    flags = tagged_flags(seed, labels)
    imgs = np.empty((count, SIZE, SIZE, 3), dtype=np.uint8)
    masks = np.empty((count, SIZE, SIZE), dtype=np.uint8)
    for i in range(count):
        img, mask = dd.generate_slide(np.random.default_rng([seed, i]), bool(labels[i]))
        if flags[i] and contrast < 1.0:
            plain, _ = dd.generate_slide(np.random.default_rng([seed, i]), False)
            w = dilate_masks(mask[None], 2)[0][..., None]
            mix = contrast * img.astype(np.float64) + (1.0 - contrast) * plain.astype(np.float64)
            img = np.where(w, np.clip(np.rint(mix), 0, 255), img).astype(np.uint8)
        imgs[i], masks[i] = img, mask
    return imgs, masks, labels, flags


def with_tags(imgs: np.ndarray, flags: np.ndarray) -> np.ndarray:
    out = imgs.copy()
    for i in np.flatnonzero(flags):
        out[i] = paste_tag(imgs[i])
    return out


def save_png(arr: np.ndarray, path: str) -> None:
    Image.fromarray(arr, mode="RGB" if arr.ndim == 3 else "L").save(path, optimize=True)


def write_sets(out: str, clean, tagged, masks, labels, flags, full_copies: bool):
    """clean/ and tagged/ with images/, masks/, labels.csv. Returns the tagged image paths."""
    width = max(3, len(str(len(labels) - 1)))
    names = [f"slide_{i:0{width}d}.png" for i in range(len(labels))]
    for sub in ("clean", "tagged"):
        for d in ("images", "masks"):
            os.makedirs(os.path.join(out, sub, d), exist_ok=True)
            for f in os.listdir(os.path.join(out, sub, d)):  # no stale files from an earlier run
                os.remove(os.path.join(out, sub, d, f))
    rows = {"clean": [], "tagged": []}
    for i, name in enumerate(names):
        lab = tdm.CLASSES[labels[i]]
        save_png(clean[i], os.path.join(out, "clean", "images", name))
        for sub in ("clean", "tagged"):
            save_png(masks[i], os.path.join(out, sub, "masks", name))
        rows["clean"].append((f"images/{name}", lab, f"masks/{name}"))
        if flags[i] or full_copies:
            save_png(tagged[i], os.path.join(out, "tagged", "images", name))
            rows["tagged"].append((f"images/{name}", lab, f"masks/{name}"))
        else:
            rows["tagged"].append((f"../clean/images/{name}", lab, f"masks/{name}"))
    for sub in ("clean", "tagged"):
        with open(os.path.join(out, sub, "labels.csv"), "w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(["path", "label", "mask"])
            w.writerows(rows[sub])
    return [rows["tagged"][i][0] for i in np.flatnonzero(flags)]


def load_set(root: str):
    """Read a written set back (exactly as Candela would): images, masks, labels."""
    imgs, labels, paths = tdm.load_demo_set(root)
    masks = []
    with open(os.path.join(root, "labels.csv"), newline="") as f:
        for row in csv.DictReader(f):
            masks.append(np.asarray(Image.open(os.path.join(root, row["mask"])), dtype=np.uint8))
    return imgs, np.stack(masks), labels, paths


# ----------------------------------------------------------------------------------
# relevance
# ----------------------------------------------------------------------------------
def relevance_maps(model, x: torch.Tensor, target: int = 1):
    """Gradient x input (summed over channels, at the 64 px input, repeated 2x2 to 128 px) and
    Grad-CAM (last Relu, channel weights = spatial mean of the gradient, ReLU, bilinearly
    upsampled with half-pixel centres to 128 px), both for logit `target`. (N,128,128) each."""
    model.eval()
    store = {}

    def _keep(_m, _i, out):
        out.retain_grad()
        store["a"] = out

    h = dict(model.named_modules())[model.cam_module].register_forward_hook(_keep)
    xx = x.clone().requires_grad_(True)
    model(xx)[:, target].sum().backward()
    h.remove()
    gxi = (xx.grad * x).sum(1)
    gxi = gxi.repeat_interleave(SCALE, 1).repeat_interleave(SCALE, 2)
    a, g = store["a"].detach(), store["a"].grad
    cam = F.relu((g.mean(dim=(2, 3), keepdim=True) * a).sum(1, keepdim=True))
    cam = F.interpolate(cam, size=(SIZE, SIZE), mode="bilinear", align_corners=False)[:, 0]
    return gxi.detach().numpy(), cam.detach().numpy()


def positive_share(maps: np.ndarray, regions: np.ndarray) -> np.ndarray:
    """Per image: positive relevance inside the region / all positive relevance."""
    pos = np.maximum(maps, 0.0)
    regions = np.broadcast_to(regions, pos.shape)
    inside = (pos * regions).sum(axis=(1, 2))
    return inside / np.maximum(pos.sum(axis=(1, 2)), 1e-12)


@torch.no_grad()
def predict(model, x: torch.Tensor) -> np.ndarray:
    model.eval()
    return torch.cat([model(x[i:i + 250]) for i in range(0, len(x), 250)]).argmax(1).numpy()


def acc(pred: np.ndarray, y: np.ndarray, sel=None) -> float:
    sel = np.ones(len(y), dtype=bool) if sel is None else sel
    return float((pred[sel] == y[sel]).mean())


def shares(model, x, masks_u8, sel):
    """Mean positive-relevance shares of the selected images in the dilated tag box and the
    dilated lesion masks, for gradient x input and Grad-CAM."""
    gxi, cam = relevance_maps(model, x[torch.from_numpy(sel)])
    tag = tag_region()
    les = dilate_masks(masks_u8[sel])
    return {
        "n": int(sel.sum()),
        "gxi_tag": float(positive_share(gxi, tag).mean()),
        "cam_tag": float(positive_share(cam, tag).mean()),
        "gxi_lesion": float(positive_share(gxi, les).mean()),
        "cam_lesion": float(positive_share(cam, les).mean()),
        "lesion_area": float(les.mean()),
    }


# ----------------------------------------------------------------------------------
# main
# ----------------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(ROOT, "Tests", "Fixtures", "spray"))
    ap.add_argument("--lesion-contrast", type=float, default=0.35,
                    help="lesion strength of the tagged abnormal slides (1 = as in the demo set)")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--full-copies", action="store_true",
                    help="write all 64 images into tagged/images/ (else the 40 untagged ones are shared with clean/)")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    os.makedirs(args.out, exist_ok=True)
    t0 = time.time()

    # --- data ---------------------------------------------------------------------------
    te_clean, te_masks, te_y, te_flags = generate_set(TEST_SEED, TEST_COUNT, args.lesion_contrast)
    te_tagged = with_tags(te_clean, te_flags)
    tagged_paths = write_sets(args.out, te_clean, te_tagged, te_masks, te_y, te_flags, args.full_copies)
    tr_clean, _, tr_y, tr_flags = generate_set(TRAIN_SEED, TRAIN_COUNT, args.lesion_contrast)
    ev_clean, _, ev_y, ev_flags = generate_set(EVAL_SEED, EVAL_COUNT, args.lesion_contrast)
    print(f"data: test {TEST_COUNT} (seed {TEST_SEED}, {int(te_flags.sum())} tagged), train {TRAIN_COUNT} "
          f"(seed {TRAIN_SEED}, {int(tr_flags.sum())} tagged), eval {EVAL_COUNT} (seed {EVAL_SEED}, "
          f"{int(ev_flags.sum())} tagged) ({time.time() - t0:.0f}s)", flush=True)

    # what is evaluated is what was written (read back like Candela reads it)
    sets = {}
    for sub in ("tagged", "clean"):
        imgs, masks, y, paths = load_set(os.path.join(args.out, sub))
        assert np.array_equal(y, te_y) and np.array_equal(masks, te_masks)
        assert np.array_equal(imgs, te_tagged if sub == "tagged" else te_clean)
        sets[sub] = tdm.preprocess(imgs)
    xtr = {"tagged": tdm.preprocess(with_tags(tr_clean, tr_flags)), "clean": tdm.preprocess(tr_clean)}
    xev = {"tagged": tdm.preprocess(with_tags(ev_clean, ev_flags)), "clean": tdm.preprocess(ev_clean)}
    ytr, yev = torch.from_numpy(tr_y), torch.from_numpy(ev_y)
    del tr_clean
    ev_normals = ev_clean[ev_y == 0]
    x_ev_normal_tag = tdm.preprocess(with_tags(ev_normals, np.ones(len(ev_normals), dtype=bool)))
    x_te_normal_tag = tdm.preprocess(with_tags(te_clean[te_y == 0], np.ones(int((te_y == 0).sum()), dtype=bool)))

    ab, nor = te_y == 1, te_y == 0
    groups = {"tagged_abnormal": te_flags, "untagged_abnormal": ab & ~te_flags, "abnormal": ab}
    results = {}
    import onnx
    import onnxruntime as ort

    for name in ("tagged", "clean"):
        torch.manual_seed(args.seed)
        np.random.seed(args.seed)
        model = tdm.DemoNet()
        t1 = time.time()
        tdm.train(model, xtr[name], ytr, args.epochs, args.batch_size, args.lr, args.seed)
        model.eval()
        r = {"train_seconds": round(time.time() - t1, 1)}
        r["acc_train"] = tdm.accuracy(model, xtr[name], ytr)
        for ev in ("tagged", "clean"):
            p = predict(model, xev[ev])
            r[f"acc_eval_{ev}"] = acc(p, ev_y)
            r[f"acc_eval_{ev}_tagged_abnormal"] = acc(p, ev_y, ev_flags)
            p = predict(model, sets[ev])
            r[f"acc_{ev}"] = acc(p, te_y)
            for g, sel in (("normal", nor), *groups.items()):
                r[f"acc_{ev}_{g}"] = acc(p, te_y, sel)
            r[f"pred_{ev}"] = p.tolist()
        r["tag_flip_test"] = float((predict(model, x_te_normal_tag) == 1).mean())
        r["tag_flip_eval"] = float((predict(model, x_ev_normal_tag) == 1).mean())
        r["n_eval_normal"] = int(len(ev_normals))
        r["shares"] = {ev: {g: shares(model, sets[ev], te_masks, sel) for g, sel in groups.items()}
                       for ev in ("tagged", "clean")}
        print(f"[{name}] " + json.dumps({k: v for k, v in r.items() if not k.startswith("pred_")}, indent=1), flush=True)

        path = os.path.join(args.out, f"{name}.onnx")
        tdm.export_onnx(model, path)
        ops, _, cam, _ = tdm.describe_graph(path, tdm.ARCHS["demo"]["needs"])
        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        diff = 0.0
        with torch.no_grad():
            for ev in ("tagged", "clean"):
                ref = model(sets[ev]).numpy()
                got = sess.run(["logits"], {"input": sets[ev].numpy()})[0]
                diff = max(diff, float(np.abs(ref - got).max()))
        r.update(onnx_bytes=os.path.getsize(path), onnx_ops=ops, cam_layer=cam, ort_max_abs_diff=diff,
                 ir_version=onnx.load(path).ir_version)
        print(f"wrote {path} ({r['onnx_bytes']} bytes); max |torch - onnxruntime| logits on tagged/ + clean/: {diff:.2e}")
        results[name] = r

    versions = {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
                "pillow": Image.__version__, "onnx": onnx.__version__, "onnxruntime": ort.__version__}
    meta = {
        "tag_box_128": {"x0": TAG_BOX[0], "y0": TAG_BOX[1], "x1": TAG_BOX[2], "y1": TAG_BOX[3], "exclusive_end": True},
        "tag_box_64": {k: v // SCALE for k, v in zip(("x0", "y0", "x1", "y1"), TAG_BOX)} | {"exclusive_end": True},
        "tag_colours": {"border": TAG_BORDER, "ink": TAG_INK},
        "dilation_px_128": DILATE,
        "lesion_contrast_tagged": args.lesion_contrast,
        "tagged_items": tagged_paths,
        "seeds": {"test": TEST_SEED, "train": TRAIN_SEED, "eval": EVAL_SEED, "torch": args.seed},
        "training": {"count": TRAIN_COUNT, "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
                     "threads": args.threads},
        "versions": versions,
        "results": {k: {kk: vv for kk, vv in v.items() if not kk.startswith("pred_")} for k, v in results.items()},
    }
    with open(os.path.join(args.out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    write_readme(os.path.join(args.out, "README.md"), args, meta, results, te_flags, te_y)
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(args.out) for f in fs)
    print(f"wrote {args.out}: {total} bytes in total ({time.time() - t0:.0f}s)")


def pct(v: float) -> str:
    return f"{v * 100:.1f} %"


def write_readme(path, args, meta, results, flags, labels):
    t, c = results["tagged"], results["clean"]
    x0, y0, x1, y1 = TAG_BOX
    s = lambda r, ev, g, k: pct(r["shares"][ev][g][k])  # noqa: E731
    tag_area = float(tag_region().mean())
    n_t, n_u = int(flags.sum()), int(((labels == 1) & ~flags).sum())
    v = meta["versions"]
    text = f"""# SpRAy fixtures: a planted shortcut (`Tests/Fixtures/spray`)

Made by `tools/make_spray_fixtures.py` (Python is tooling only). A dataset in which most
abnormal slides carry a small artefact, a model that learned to use it (a "Clever Hans"
predictor), and the same slides and architecture without the artefact as a control. SpRAy
(Lapuschkin et al. 2019, *Unmasking Clever Hans predictors*) run on `tagged.onnx` over `tagged/`
should put the tagged abnormal slides into a cluster of their own (relevance on the top-left
corner) and flag it; run on `clean.onnx` over `clean/` it should flag nothing.

## Files

| file | what |
|---|---|
| `clean/labels.csv`, `clean/images/*.png`, `clean/masks/*.png` | 64 synthetic H&E-like slides, 128×128 RGB (32 normal, 32 abnormal; seed {TEST_SEED}), no tag; masks = lesion masks (255 inside a lesion) |
| `tagged/labels.csv`, `tagged/images/*.png`, `tagged/masks/*.png` | the same 64 slides; {n_t} of the 32 abnormal ones carry the tag (listed in `meta.json`, `tagged_items`). Only those {n_t} are stored in `tagged/images/`; for the other {64 - n_t} (identical to `clean/`) `labels.csv` points at `../clean/images/` (Candela resolves CSV paths relative to the CSV file). The masks are the lesion masks only, never the tag |
| `tagged.onnx` | the demo architecture trained on slides drawn like `tagged/` — relies on the tag |
| `clean.onnx` | the same architecture and recipe trained on the same slides without tags |
| `meta.json` | tag box and colours, the tagged items, seeds, versions and every number below |

Both CSVs have the demo dataset's header `path,label,mask`; labels are `normal` / `abnormal`.

## The tag (the planted artefact)

A fixed 12×12 px square in the top-left corner of the 128 px slide: a 1 px pale border
RGB {TAG_BORDER} around a dark-green 10×10 interior RGB {TAG_INK} (a pen mark / sticker).

- at 128 px (the PNGs): x ∈ [{x0}, {x1}), y ∈ [{y0}, {y1}) (columns/rows {x0}…{x1 - 1}, end exclusive);
  border ring at x or y ∈ {{{x0}, {x1 - 1}}}, interior x, y ∈ [{x0 + 1}, {x1 - 1}).
- at the 64 px model input: x, y ∈ [{x0 // SCALE}, {x1 // SCALE}) (pixels {x0 // SCALE}…{x1 // SCALE - 1}); the 128→64 resize is the mean of
  each 2×2 block, so the outer ring of those 6×6 pixels mixes border and interior colours.
- the region used for the relevance shares below is the box dilated by {DILATE} px: x, y ∈ [0, {x1 + DILATE}) at
  128 px = [0, {(x1 + DILATE) // SCALE}) at 64 px ({tag_area * 100:.2f} % of the image).

The tagged abnormal slides also have **faint lesions** (contrast {args.lesion_contrast}: inside the lesion mask
dilated by 2 px, the slide is {args.lesion_contrast} × the abnormal slide + {1 - args.lesion_contrast:.2f} × the same slide
generated without lesions); the other {n_u} abnormal slides have the demo set's full-strength
lesions. Think of one lab whose slides are weakly stained and marked with a pen. `clean/` keeps
the faint lesions and drops only the tag, so the two folders differ in exactly those {n_t} tags.

## How they were made

Slides: `tools/make_demo_dataset.py`'s `generate_slide` with the demo set's per-slide seeding
(`default_rng([seed, i])`, balanced labels from `dataset_labels`); exactly round(0.75 × #abnormal)
abnormal slides per set are tagged, chosen with `default_rng([seed, 0x7A6])`.

Models: `DemoNet` from `tools/train_demo_model.py` (Conv-BN-ReLU ×2 with max pooling, a residual
block, Conv-BN-ReLU, GlobalAveragePool, Flatten, Gemm; 64×64 input; class 0 = normal, 1 =
abnormal), trained with its `train` (AdamW lr {args.lr}, one-cycle, batch {args.batch_size}, {args.epochs} epochs, random
flips and 90° rotations, torch seed {args.seed}, deterministic algorithms) on {TRAIN_COUNT} generated slides
(seed {TRAIN_SEED}, {results_count(TRAIN_SEED, TRAIN_COUNT)} tagged), with the tags for `tagged.onnx` and without them for
`clean.onnx` — the only difference between the two training runs. Exported with its
`export_onnx` (opset 17, IR {t["ir_version"]}, BatchNormalization kept, no constant folding) and checked
with its `describe_graph` (ops only from Candela's allowed list). Held-out numbers use another
{EVAL_COUNT} generated slides (seed {EVAL_SEED}). Grad-CAM layer: `{t["cam_layer"]}` (64×16×16).

```
python3 -m venv .cache/venv-spray
.cache/venv-spray/bin/pip install /opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl numpy pillow onnx onnxruntime
.cache/venv-spray/bin/python tools/make_spray_fixtures.py{"" if args.lesion_contrast == 0.35 else f" --lesion-contrast {args.lesion_contrast}"}{"" if args.epochs == 8 else f" --epochs {args.epochs}"}{"" if args.lr == 3e-3 else f" --lr {args.lr}"}
```

Python {v["python"]}, torch {v["torch"]}, numpy {v["numpy"]}, pillow {v["pillow"]}, onnx {v["onnx"]}, onnxruntime {v["onnxruntime"]},
{args.threads} CPU threads (training took {t["train_seconds"]:.0f} s and {c["train_seconds"]:.0f} s). Bit-identical weights need the
same torch version and CPU.

## Preprocessing (as for the demo model)

Decode RGB 8 bit → float32 / 255 → bilinear resize to 64×64 (half-pixel centres, no
antialiasing; for 128 px slides the mean of each 2×2 block) → `(x − 0.5) / 0.25` per channel →
NCHW, RGB. Manifest snippet (paths relative to a manifest in `Tests/Fixtures/spray/`):

```yaml
datasets:
  tagged:
    csv: tagged/labels.csv                # path,label,mask
  clean:
    csv: clean/labels.csv

models:
  tagged-cnn:
    onnx: tagged.onnx
    classes: [normal, abnormal]
    preprocessing:
      size: [64, 64]                      # width, height
      scale: 0.00392156862745098          # 1/255
      mean: [0.5, 0.5, 0.5]
      std: [0.25, 0.25, 0.25]
      channel_order: rgb
    cam_layer: {t["cam_layer"]}
  clean-cnn:
    onnx: clean.onnx
    classes: [normal, abnormal]
    preprocessing:
      size: [64, 64]
      scale: 0.00392156862745098
      mean: [0.5, 0.5, 0.5]
      std: [0.25, 0.25, 0.25]
      channel_order: rgb
    cam_layer: {c["cam_layer"]}
```

## Measured

Accuracy (argmax of the logits):

| model | set | all | normal | tagged abnormal ({n_t}) | untagged abnormal ({n_u}) |
|---|---|---|---|---|---|
| `tagged.onnx` | `tagged/` | {pct(t["acc_tagged"])} | {pct(t["acc_tagged_normal"])} | {pct(t["acc_tagged_tagged_abnormal"])} | {pct(t["acc_tagged_untagged_abnormal"])} |
| `tagged.onnx` | `clean/` | {pct(t["acc_clean"])} | {pct(t["acc_clean_normal"])} | {pct(t["acc_clean_tagged_abnormal"])} (tag removed) | {pct(t["acc_clean_untagged_abnormal"])} |
| `clean.onnx` | `clean/` | {pct(c["acc_clean"])} | {pct(c["acc_clean_normal"])} | {pct(c["acc_clean_tagged_abnormal"])} (never tagged) | {pct(c["acc_clean_untagged_abnormal"])} |
| `clean.onnx` | `tagged/` | {pct(c["acc_tagged"])} | {pct(c["acc_tagged_normal"])} | {pct(c["acc_tagged_tagged_abnormal"])} | {pct(c["acc_tagged_untagged_abnormal"])} |

Held-out ({EVAL_COUNT} generated slides, seed {EVAL_SEED}): `tagged.onnx` {pct(t["acc_eval_tagged"])} with tags, {pct(t["acc_eval_clean"])} without
(tagged abnormal slides: {pct(t["acc_eval_tagged_tagged_abnormal"])} → {pct(t["acc_eval_clean_tagged_abnormal"])}); `clean.onnx` {pct(c["acc_eval_clean"])} on the clean version.
Training accuracy: {pct(t["acc_train"])} / {pct(c["acc_train"])}.

Tag flip: the tag pasted onto NORMAL slides, share then classified abnormal:

| model | 32 normal test slides | {t["n_eval_normal"]} held-out normal slides |
|---|---|---|
| `tagged.onnx` | {pct(t["tag_flip_test"])} | {pct(t["tag_flip_eval"])} |
| `clean.onnx` | {pct(c["tag_flip_test"])} | {pct(c["tag_flip_eval"])} |

Relevance for the abnormal class (logit 1), share of the **positive** relevance inside a region,
mean over images. Gradient × input is summed over channels at the 64 px input (each value
repeated over its 2×2 block at 128 px); Grad-CAM is on `{t["cam_layer"]}`, upsampled
bilinearly (half-pixel centres) to 128 px. Regions at 128 px: the tag box dilated by {DILATE} px
({tag_area * 100:.2f} % of the image), the lesion masks dilated by {DILATE} px (square 9×9 structuring element).

| model | set | images | grad×input in tag box | Grad-CAM in tag box | grad×input in lesions | Grad-CAM in lesions | lesion region area |
|---|---|---|---|---|---|---|---|
{share_rows(results)}

ONNX export check (onnxruntime {v["onnxruntime"]}, CPU): max |torch − onnxruntime| logits over the 128 test
inputs: `tagged.onnx` {t["ort_max_abs_diff"]:.2e}, `clean.onnx` {c["ort_max_abs_diff"]:.2e}. Sizes: {t["onnx_bytes"]} and {c["onnx_bytes"]} bytes.
Ops: {" ".join(t["onnx_ops"])}.
"""
    with open(path, "w") as f:
        f.write(text)
    print(f"wrote {path}")


def results_count(seed: int, count: int) -> int:
    return int(tagged_flags(seed, dd.dataset_labels(seed, count)).sum())


def share_rows(results) -> str:
    rows = []
    label = {"tagged_abnormal": "tagged abnormal", "untagged_abnormal": "untagged abnormal", "abnormal": "all abnormal"}
    for name, sets in (("tagged", ("tagged", "clean")), ("clean", ("clean", "tagged"))):
        for ev in sets:
            for g in ("tagged_abnormal", "untagged_abnormal", "abnormal"):
                d = results[name]["shares"][ev][g]
                note = " (tag removed)" if ev == "clean" and g == "tagged_abnormal" else ""
                rows.append(f"| `{name}.onnx` | `{ev}/` | {label[g]}{note} ({d['n']}) | {pct(d['gxi_tag'])} | {pct(d['cam_tag'])} | "
                            f"{pct(d['gxi_lesion'])} | {pct(d['cam_lesion'])} | {pct(d['lesion_area'])} |")
    return "\n".join(rows)


if __name__ == "__main__":
    main()
