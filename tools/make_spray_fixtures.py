#!/usr/bin/env python3
"""Planted-shortcut ("Clever Hans") fixtures for SpRAy (spectral relevance analysis,
Lapuschkin et al. 2019, "Unmasking Clever Hans predictors"). Tooling only; Candela never runs Python.

Writes Tests/Fixtures/spray/:

    clean/       64 synthetic H&E-like slides, 128x128 RGB (32 normal, 32 abnormal; seed 2027), no tag:
                 images/*.png, masks/*.png (lesion masks), labels.csv (path,label,mask)
    tagged/      the same 64 slides, but 24 of the 32 abnormal ones carry the planted artefact: a
                 12x12 px light-turquoise sticker with a 1 px white border in the top-left corner
                 (x, y in [4, 16) at 128 px; [2, 8) at the 64 px model input). Normal slides never
                 carry it. masks/ holds the lesion masks only, never the tag. The 40 slides without
                 a tag are byte-identical to clean/, so tagged/labels.csv points at ../clean/images/
                 for them (Candela resolves CSV paths relative to the CSV file); --full-copies writes
                 all 64 images into tagged/images/ instead.
    tagged.onnx  DemoNet (tools/train_demo_model.py) trained on 3000 generated slides drawn like
                 tagged/ (seed 3001, not committed): it learns to use the tag.
    clean.onnx   the same architecture and recipe trained on the very same 3000 slides without tags.
    meta.json    the tag's box and colours, which test slides are tagged, seeds, versions and every
                 number measured here.
    README.md    what the files are, how they were made, the numbers.

The shortcut: the abnormal slides that carry the tag also have faint lesions (inside the lesion
mask dilated by 2 px the slide is --lesion-contrast (0.1) x the abnormal slide + 0.9 x the same
slide generated without lesions) -- one lab whose slides are weakly stained and carry a sticker.
In training the tag is perfectly predictive (it only ever appears on abnormal slides) and far
easier to see than those faint lesions, so the tagged model learns "turquoise square => abnormal";
the clean model sees the same slides without tags and has to learn the faint lesions. The tag is
light on purpose: a dark one (a dark-green pen mark, tried first) looks like a lesion to the clean
model as well, which then also calls tagged normal slides abnormal (measured and reported here).

Everything is deterministic in the seeds below. The slide generator is imported from
tools/make_demo_dataset.py; the model, preprocessing, training loop, ONNX export and op check
from tools/train_demo_model.py.

Exact commands used for the committed files (from the repository root):

    python3 -m venv .cache/venv-spray
    .cache/venv-spray/bin/pip install /opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl \\
        numpy pillow onnx onnxruntime
    .cache/venv-spray/bin/python tools/make_spray_fixtures.py

Versions used: Python 3.11.7, torch 2.13.0+cpu, numpy 2.4.6, pillow 13.0.0, onnx 1.23.2,
onnxruntime 1.32.0, 2 CPU threads (about 4 minutes). Bit-identical weights need the same torch
version and CPU.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import re
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
TAG_BORDER = (255, 255, 255)  # 1 px white border
TAG_INK = (150, 235, 235)     # light turquoise interior (a sticker)
# A dark tag (pen ink) is no good: a model that learned the dark lesions calls it a lesion too.
# The clean model's verdict on normal slides with this dark-green square is measured and reported.
DARK_TAG = ((226, 240, 222), (34, 96, 52))
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


def paste_tag(img: np.ndarray, colours=None) -> np.ndarray:
    """Copy of a uint8 (128,128,3) slide with the tag (border, interior colours) in the top-left corner."""
    border, ink = colours or (TAG_BORDER, TAG_INK)
    out = img.copy()
    x0, y0, x1, y1 = TAG_BOX
    out[y0:y1, x0:x1] = border
    out[y0 + 1:y1 - 1, x0 + 1:x1 - 1] = ink
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


def with_tags(imgs: np.ndarray, flags=None, colours=None) -> np.ndarray:
    """Tags pasted onto the flagged images (all of them if flags is None)."""
    out = imgs.copy()
    for i in np.flatnonzero(np.ones(len(imgs), dtype=bool) if flags is None else flags):
        out[i] = paste_tag(imgs[i], colours)
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
    cam, grad = tdm.gradcam_backward(model, x, lambda y: y[:, target].sum())
    gxi = (grad * x).sum(1)
    gxi = gxi.repeat_interleave(SCALE, 1).repeat_interleave(SCALE, 2)
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
    tag, tag16 = tag_region(), tag_region(16)
    les = dilate_masks(masks_u8[sel])
    return {
        "n": int(sel.sum()),
        "gxi_tag": float(positive_share(gxi, tag).mean()),
        "cam_tag": float(positive_share(cam, tag).mean()),
        "gxi_lesion": float(positive_share(gxi, les).mean()),
        "cam_lesion": float(positive_share(cam, les).mean()),
        "lesion_area": float(les.mean()),
        # the same, with the tag box dilated by 16 px (two Grad-CAM cells) instead of 4
        "gxi_tag16": float(positive_share(gxi, tag16).mean()),
        "cam_tag16": float(positive_share(cam, tag16).mean()),
    }


def candela_heatmaps(model, x: torch.Tensor, targets: np.ndarray):
    """Heatmaps as Candela derives them (docs/methods.md) for each image's target logit, at the
    64 px model input: inputxgradient and saliency reduce channels by the sum of absolute values;
    gradcam (the last Relu) is resized bilinearly with half-pixel centres. Dict of (N,64,64)."""
    cam, grad = tdm.gradcam_backward(model, x, lambda y: y.gather(1, torch.from_numpy(targets)[:, None]).sum())
    cam = F.interpolate(cam, size=x.shape[2:], mode="bilinear", align_corners=False)[:, 0]
    return {"inputxgradient": (grad * x).abs().sum(1).numpy(), "saliency": grad.abs().sum(1).numpy(),
            "gradcam": cam.detach().numpy()}


def spray_reference(maps: np.ndarray, masks_u8: np.ndarray, size: int = 16, max_clusters: int = 8, outside: float = 0.5,
                    lift: float = 1.0, fixed: float = 0.5, region_area: float = 1 / 16, min_size: int = 3, margin: int = 1):
    """A NumPy re-implementation of the steps and defaults in docs/analysis.md ("Strategies: kind:
    spray") for orientation only -- Candela's Swift code is the reference, and its k-means draws
    different random numbers. maps (N,h,w) heatmaps of one class, masks_u8 (N,128,128) lesion masks.
    Returns the eigenvalues, q and per cluster: members, flagged, outside share, lift, region share."""
    n, hh, ww = maps.shape
    cy, cx = np.arange(hh) * size // hh, np.arange(ww) * size // ww
    feats = np.zeros((n, size * size))
    for i, m in enumerate(maps):
        sums = np.zeros((size, size))
        np.add.at(sums, (cy[:, None], cx[None, :]), np.maximum(m, 0.0))
        cnt = np.zeros((size, size))
        np.add.at(cnt, (cy[:, None], cx[None, :]), 1.0)
        mean = (sums / cnt).ravel()
        feats[i] = mean / mean.sum() if mean.sum() > 0 else mean
    my, mx = np.arange(masks_u8.shape[1]) * size // masks_u8.shape[1], np.arange(masks_u8.shape[2]) * size // masks_u8.shape[2]
    objects = []
    for mk in masks_u8:
        cells = np.zeros((size, size), dtype=bool)
        ys, xs = np.nonzero(mk >= 128)
        cells[my[ys], mx[xs]] = True
        objects.append(cells.ravel() if cells.any() else None)

    def widen(cells: np.ndarray, r: int) -> np.ndarray:
        c = torch.from_numpy(cells.reshape(1, 1, size, size).astype(np.float32))
        return (F.max_pool2d(c, 2 * r + 1, 1, r)[0, 0] > 0).numpy().ravel() if r > 0 else cells

    k = min(n - 1, min(30, max(3, int(np.floor(np.sqrt(n) + 0.5)))))
    dist = ((feats[:, None] - feats[None]) ** 2).sum(-1)
    adj = np.zeros((n, n))
    for i in range(n):
        order = [j for j in np.lexsort((np.arange(n), dist[i])) if j != i][:k]
        adj[i, order] = 1.0
    adj = np.maximum(adj, adj.T)
    deg = adj.sum(1)
    ev, vec = np.linalg.eigh(np.eye(n) - adj / np.sqrt(np.outer(deg, deg)))
    lam = ev[:min(n, max_clusters + 1)]
    q = int(np.argmax(np.diff(lam))) + 1
    pts = vec[:, :q] / np.maximum(np.linalg.norm(vec[:, :q], axis=1, keepdims=True), 1e-300)
    rng = np.random.default_rng(0)
    best, labels = np.inf, np.zeros(n, dtype=int)
    for _ in range(10 if q > 1 else 0):  # k-means++ seeding, ten restarts
        cent = [pts[rng.integers(n)]]
        for _c in range(1, q):
            d2 = np.min([((pts - c) ** 2).sum(1) for c in cent], axis=0)
            cent.append(pts[rng.choice(n, p=d2 / d2.sum())] if d2.sum() > 0 else pts[rng.integers(n)])
        cent = np.array(cent)
        for _it in range(100):
            lab = np.argmin(((pts[:, None] - cent[None]) ** 2).sum(-1), 1)
            new = np.array([pts[lab == j].mean(0) if (lab == j).any() else cent[j] for j in range(q)])
            if np.allclose(new, cent):
                break
            cent = new
        cost = ((pts - cent[lab]) ** 2).sum()
        if cost < best:
            best, labels = cost, lab
    clusters = []
    for j in sorted(set(labels.tolist()), key=lambda j: (-(labels == j).sum(), np.flatnonzero(labels == j)[0])):
        members = np.flatnonzero(labels == j)
        mean = feats[members].mean(0)
        region, held = [], 0.0
        for cell in sorted(range(size * size), key=lambda c: (-mean[c], c)):
            if held >= 0.5 * mean.sum():
                break
            region.append(cell)
            held += mean[cell]
        cap = max(1, int(np.floor(region_area * size * size + 0.5)))
        concentrated = mean.sum() > 0 and len(region) <= cap
        region = region[:cap]
        rcells = np.zeros(size * size, dtype=bool)
        rcells[region] = True
        wide = widen(rcells, 1)
        region_share = float(np.median([feats[i][wide].sum() / feats[i].sum() for i in members if feats[i].sum() > 0]))
        band = max(1, size // 8)
        xs, ys = [c % size for c in region], [c // size for c in region]
        border = min(xs) < band or max(xs) >= size - band or min(ys) < band or max(ys) >= size - band
        masked = [i for i in members if objects[i] is not None]
        out_share = obj_lift = None
        if masked and 2 * len(masked) >= len(members):
            sh = []
            for i in masked:
                inside = widen(objects[i], margin)
                sh.append((feats[i][inside].sum() / feats[i].sum(), inside.mean()))
            out_share = float(np.median([1 - a for a, _ in sh]))
            obj_lift = float(np.median([a / b for a, b in sh]))
        flagged = len(members) >= min_size and (
            (out_share is not None and out_share >= outside and obj_lift < lift)
            or (out_share is None and concentrated and border and region_share >= fixed))
        clusters.append({"members": members.tolist(), "flagged": bool(flagged), "outside_share": out_share,
                         "lift": obj_lift, "region_share": region_share, "concentrated": bool(concentrated)})
    return {"eigenvalues": [round(float(e), 4) for e in lam], "q": q, "neighbours": k, "clusters": clusters}


# ----------------------------------------------------------------------------------
# main
# ----------------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(ROOT, "Tests", "Fixtures", "spray"))
    ap.add_argument("--lesion-contrast", type=float, default=0.1,
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
    x_ev_normal_tag = tdm.preprocess(with_tags(ev_normals))
    x_ev_normal_dark = tdm.preprocess(with_tags(ev_normals, colours=DARK_TAG))
    x_te_normal_tag = tdm.preprocess(with_tags(te_clean[te_y == 0]))

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
        r["dark_tag_flip_eval"] = float((predict(model, x_ev_normal_dark) == 1).mean())
        r["n_eval_normal"] = int(len(ev_normals))
        r["shares"] = {ev: {g: shares(model, sets[ev], te_masks, sel) for g, sel in groups.items()}
                       for ev in ("tagged", "clean")}
        r["spray"] = {}
        for ev in ("tagged", "clean"):
            pred = predict(model, sets[ev])
            for cls in (0, 1):
                sel = pred == cls
                if sel.sum() < 4:
                    continue
                heat = candela_heatmaps(model, sets[ev][torch.from_numpy(sel)], pred[sel])
                for expl, maps in heat.items():
                    res = spray_reference(maps, te_masks[sel])
                    idx = np.flatnonzero(sel)
                    for c in res["clusters"]:  # test-set indices and how many of them are tagged
                        c["members"] = [int(idx[i]) for i in c["members"]]
                        c["tagged"] = int(te_flags[c["members"]].sum())
                    r["spray"][f"{ev}/{expl}/{tdm.CLASSES[cls]}"] = res
        print(f"[{name}] " + json.dumps({k: v for k, v in r.items() if not k.startswith("pred_") and k != "spray"}, indent=1))
        for key, res in r["spray"].items():
            print(f"[{name}] spray {key}: eigenvalues {res['eigenvalues'][:4]}, clusters " + ", ".join(
                f"{len(c['members'])} ({c['tagged']} tagged){' FLAGGED' if c['flagged'] else ''}" for c in res["clusters"]), flush=True)

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
        "dark_tag_colours_rejected": {"border": DARK_TAG[0], "ink": DARK_TAG[1]},
        "dilation_px_128": DILATE,
        "lesion_contrast_tagged": args.lesion_contrast,
        "tagged_items": tagged_paths,
        "seeds": {"test": TEST_SEED, "train": TRAIN_SEED, "eval": EVAL_SEED, "torch": args.seed},
        "training": {"count": TRAIN_COUNT, "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
                     "threads": args.threads},
        "versions": versions,
        "results": {k: {kk: vv for kk, vv in v.items() if not kk.startswith("pred_")} for k, v in results.items()},
    }
    text = json.dumps(meta, indent=1)
    # lists of numbers on one line each
    text = re.sub(r"\[\s*(-?[0-9.e-]+(?:,\s*-?[0-9.e-]+)*)\s*\]", lambda m: "[" + re.sub(r"\s+", " ", m.group(1)) + "]", text)
    with open(os.path.join(args.out, "meta.json"), "w") as f:
        f.write(text + "\n")
    readme = os.path.join(args.out, "README.md")
    for _ in range(2):  # the second pass reports the folder's size including the README itself
        total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(args.out) for f in fs)
        write_readme(readme, args, meta, results, te_flags, te_y, total)
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(args.out) for f in fs)
    print(f"wrote {args.out}: {total} bytes in total ({time.time() - t0:.0f}s)")


def pct(v: float) -> str:
    return f"{v * 100:.1f} %"


def write_readme(path, args, meta, results, flags, labels, total_bytes):
    t, c = results["tagged"], results["clean"]
    x0, y0, x1, y1 = TAG_BOX
    tag_area = float(tag_region().mean())
    tag16_area = float(tag_region(16).mean())
    n_t, n_u = int(flags.sum()), int(((labels == 1) & ~flags).sum())
    v = meta["versions"]
    opts = "".join(f" {o} {val}" for o, val, dflt in (("--lesion-contrast", args.lesion_contrast, 0.1),
                                                        ("--epochs", args.epochs, 8), ("--lr", args.lr, 3e-3),
                                                        ("--seed", args.seed, 0)) if val != dflt)
    opts += " --full-copies" if args.full_copies else ""
    shared = "" if args.full_copies else (
        f" Only those {n_t} are stored in `tagged/images/`; for the other {len(labels) - n_t} (byte-identical to "
        "`clean/`) `tagged/labels.csv` points at `../clean/images/` — Candela resolves CSV paths relative to "
        "the CSV file. This keeps the folder small; `--full-copies` writes all 64.")
    tagged_names = ", ".join(os.path.basename(p) for p in meta["tagged_items"])
    text = f"""# SpRAy fixtures: a planted shortcut (`Tests/Fixtures/spray`)

Made by `tools/make_spray_fixtures.py` (Python is tooling only). A dataset in which most
abnormal slides carry a small artefact, a model that learned to use it (a "Clever Hans"
predictor), and the same slides and architecture without the artefact as a control. SpRAy
(Lapuschkin et al. 2019, *Unmasking Clever Hans predictors*) run on `tagged.onnx` over the
abnormal slides of `tagged/` should put the {n_t} tagged slides into a cluster of their own
(relevance on the top-left corner) and flag it; run on `clean.onnx` over `clean/` it should
flag nothing.

## Files

| file | what |
|---|---|
| `clean/labels.csv`, `clean/images/*.png`, `clean/masks/*.png` | 64 synthetic H&E-like slides, 128×128 RGB 8 bit (32 normal, 32 abnormal; seed {TEST_SEED}), no tag; masks are the lesion masks (8-bit gray, 255 inside a lesion, all 0 for normal slides) |
| `tagged/labels.csv`, `tagged/images/*.png`, `tagged/masks/*.png` | the same 64 slides; {n_t} of the 32 abnormal ones carry the tag.{shared} The masks are the lesion masks only, never the tag |
| `tagged.onnx` | the demo architecture trained on slides drawn like `tagged/`; relies on the tag |
| `clean.onnx` | the same architecture and recipe trained on the same slides without tags |
| `meta.json` | tag box and colours, the tagged items, seeds, versions and every number below |

Both CSVs have the demo dataset's header `path,label,mask`; labels are `normal` / `abnormal`.
Tagged slides: {tagged_names}. Total size of this folder: {total_bytes / 1e6:.2f} MB.

## The tag (the planted artefact)

A fixed 12×12 px square in the top-left corner of every tagged slide: a 1 px white border, RGB
{TAG_BORDER}, around a light-turquoise 10×10 interior, RGB {TAG_INK} (a sticker).

- at 128 px (the PNGs): x ∈ [{x0}, {x1}), y ∈ [{y0}, {y1}) (columns and rows {x0}…{x1 - 1}); the border ring is
  x or y ∈ {{{x0}, {x1 - 1}}}, the interior x, y ∈ [{x0 + 1}, {x1 - 1}).
- at the 64 px model input: x, y ∈ [{x0 // SCALE}, {x1 // SCALE}) (pixels {x0 // SCALE}…{x1 // SCALE - 1}). The 128→64 resize is the mean of
  each 2×2 block, so the outer ring of those 6×6 pixels mixes border and interior colours.
- the region for the relevance shares below: the box dilated by {DILATE} px, x, y ∈ [0, {x1 + DILATE}) at 128 px
  = [0, {(x1 + DILATE) // SCALE}) at 64 px ({tag_area * 100:.2f} % of the image).

The tagged abnormal slides also have **faint lesions**: inside the lesion mask dilated by 2 px
the slide is {args.lesion_contrast} × the abnormal slide + {1 - args.lesion_contrast:.1f} × the same slide generated without
lesions (`generate_slide` draws the same tissue up to the lesions). The other {n_u} abnormal
slides have the demo set's full-strength lesions. Think of one lab whose slides are weakly
stained and carry a sticker. `clean/` keeps the faint lesions and drops only the tag, so the
two folders differ in exactly those {n_t} tags.

Why turquoise and not a dark pen mark: a dark square looks like a lesion to a model that
learned lesions. With the dark-green square RGB {DARK_TAG[1]} (border {DARK_TAG[0]}) pasted onto
the {t["n_eval_normal"]} held-out normal slides, `clean.onnx` calls {pct(c["dark_tag_flip_eval"])} of them abnormal (`tagged.onnx`
{pct(t["dark_tag_flip_eval"])}), so a flip test could not tell a shortcut from lesion detection.

## How they were made

Slides: `generate_slide` from `tools/make_demo_dataset.py` with the demo set's per-slide seeding
(`default_rng([seed, i])`, balanced labels from `dataset_labels`); exactly round(0.75 × #abnormal)
abnormal slides per set are tagged, chosen with `default_rng([seed, 0x7A6])`.

Models: `DemoNet` from `tools/train_demo_model.py` (Conv-BN-ReLU 3→16, MaxPool, Conv-BN-ReLU
16→32, MaxPool, residual block on 32 channels, Conv-BN-ReLU 32→64, GlobalAveragePool, Flatten,
Gemm 64→2; 64×64 input; class 0 = normal, 1 = abnormal), trained with its `train` (AdamW lr
{args.lr}, one-cycle, weight decay 1e-4, batch {args.batch_size}, {args.epochs} epochs, random flips and 90° rotations,
torch seed {args.seed}, deterministic algorithms) on {TRAIN_COUNT} generated slides (seed {TRAIN_SEED},
{results_count(TRAIN_SEED, TRAIN_COUNT)} of them tagged), with the tags for `tagged.onnx` and without them for `clean.onnx` — the only
difference between the two runs. Exported with its `export_onnx` (opset 17, IR {t["ir_version"]},
BatchNormalization kept as a node, no constant folding) and checked with its `describe_graph`
(only ops from Candela's allowed list). Held-out numbers use {EVAL_COUNT} more generated slides (seed
{EVAL_SEED}). Grad-CAM layer: `{t["cam_layer"]}` (64×16×16).

```
python3 -m venv .cache/venv-spray
.cache/venv-spray/bin/pip install /opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl numpy pillow onnx onnxruntime
.cache/venv-spray/bin/python tools/make_spray_fixtures.py{opts}
```

Python {v["python"]}, torch {v["torch"]}, numpy {v["numpy"]}, pillow {v["pillow"]}, onnx {v["onnx"]}, onnxruntime
{v["onnxruntime"]}, {args.threads} CPU threads (training took {t["train_seconds"]:.0f} s and {c["train_seconds"]:.0f} s). Bit-identical weights need
the same torch version and CPU; regenerating changes the numbers below slightly.

## Preprocessing (the demo model's)

Decode RGB 8 bit → float32 / 255 → bilinear resize to 64×64 (half-pixel centres, no
antialiasing; for these 128 px slides the mean of each 2×2 block) → `(x − 0.5) / 0.25` per
channel → NCHW, RGB. Manifest snippet (paths relative to a manifest in `Tests/Fixtures/spray/`):

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

| model | set | all 64 | normal (32) | tagged abnormal ({n_t}) | untagged abnormal ({n_u}) |
|---|---|---|---|---|---|
| `tagged.onnx` | `tagged/` | {pct(t["acc_tagged"])} | {pct(t["acc_tagged_normal"])} | {pct(t["acc_tagged_tagged_abnormal"])} | {pct(t["acc_tagged_untagged_abnormal"])} |
| `tagged.onnx` | `clean/` | {pct(t["acc_clean"])} | {pct(t["acc_clean_normal"])} | {pct(t["acc_clean_tagged_abnormal"])} (tag removed) | {pct(t["acc_clean_untagged_abnormal"])} |
| `clean.onnx` | `clean/` | {pct(c["acc_clean"])} | {pct(c["acc_clean_normal"])} | {pct(c["acc_clean_tagged_abnormal"])} (faint lesions, no tag) | {pct(c["acc_clean_untagged_abnormal"])} |
| `clean.onnx` | `tagged/` | {pct(c["acc_tagged"])} | {pct(c["acc_tagged_normal"])} | {pct(c["acc_tagged_tagged_abnormal"])} | {pct(c["acc_tagged_untagged_abnormal"])} |

Held-out ({EVAL_COUNT} generated slides, seed {EVAL_SEED}): `tagged.onnx` {pct(t["acc_eval_tagged"])} with the tags, {pct(t["acc_eval_clean"])} without
them (on the tagged abnormal slides: {pct(t["acc_eval_tagged_tagged_abnormal"])} → {pct(t["acc_eval_clean_tagged_abnormal"])}); `clean.onnx` {pct(c["acc_eval_clean"])} on the untagged
version ({pct(c["acc_eval_clean_tagged_abnormal"])} on the faint-lesion slides). Training accuracy: {pct(t["acc_train"])} (tagged), {pct(c["acc_train"])} (clean).

Tag flip: the tag pasted onto NORMAL slides; share then classified abnormal.

| model | 32 normal test slides | {t["n_eval_normal"]} held-out normal slides |
|---|---|---|
| `tagged.onnx` | {pct(t["tag_flip_test"])} | {pct(t["tag_flip_eval"])} |
| `clean.onnx` | {pct(c["tag_flip_test"])} | {pct(c["tag_flip_eval"])} |

Relevance for the abnormal class (logit 1): share of the **positive** relevance inside a
region, mean over the images. Gradient × input is summed over channels at the 64 px model input
(each value repeated over its 2×2 block at 128 px); Grad-CAM is on `{t["cam_layer"]}`
(channel weights = spatial mean of the gradient, ReLU), upsampled bilinearly (half-pixel
centres) to 128 px. Regions at 128 px: the tag box dilated by {DILATE} px ({tag_area * 100:.2f} % of the image),
the lesion masks dilated by {DILATE} px (9×9 square structuring element; area in the last column).

| model | set | images | grad×input in tag box | Grad-CAM in tag box | grad×input in lesions | Grad-CAM in lesions | lesion region area |
|---|---|---|---|---|---|---|---|
{share_rows(results)}

Neither method is sharp on this small network (the demo model card says the same of Grad-CAM:
the last layer sees about 68 px of the slide), so a 20×20 px box holds a minority of the mass
even when the tag decides the class: Grad-CAM's blob around the tag reaches well past it.
With the tag box dilated by 16 px instead (x, y ∈ [0, {x1 + 16}), {tag16_area * 100:.1f} % of the image), `tagged.onnx` on
its tagged abnormal slides has {pct(t["shares"]["tagged"]["tagged_abnormal"]["gxi_tag16"])} (grad×input) and {pct(t["shares"]["tagged"]["tagged_abnormal"]["cam_tag16"])} (Grad-CAM) there, against
{pct(t["shares"]["tagged"]["untagged_abnormal"]["gxi_tag16"])} and {pct(t["shares"]["tagged"]["untagged_abnormal"]["cam_tag16"])} on the untagged abnormal ones.

SpRAy as Candela runs it, re-implemented in NumPy for orientation (`spray_reference` in the
script: docs/analysis.md's steps and defaults — positive relevance pooled to 16×16 and scaled to
sum 1, symmetric √n-nearest-neighbour graph, eigengap, k-means on the normalized eigenvector
rows, the Clever-Hans test with the lesion masks, margin 1). Heatmaps as Candela derives them,
for each image's predicted class at the 64 px input: `inputxgradient` and `saliency` with channels
reduced by the sum of absolute values, `gradcam` resized bilinearly. Candela's own k-means draws
other random numbers, so its clusters can differ in detail. Each cluster: its size, in brackets
how many of its members are the {n_t} slides tagged in `tagged/` (tag removed in `clean/`), and `F`
when flagged.

| model | set | class (images) | explainer | λ₁…λ₄ | clusters: size (tagged) |
|---|---|---|---|---|---|
{spray_rows(results)}

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


def spray_rows(results) -> str:
    rows = []
    for name, sets in (("tagged", ("tagged", "clean")), ("clean", ("clean", "tagged"))):
        for ev in sets:
            for key, res in results[name]["spray"].items():
                e, expl, cls = key.split("/")
                if e != ev:
                    continue
                n = sum(len(c["members"]) for c in res["clusters"])
                lam = ", ".join(f"{x:.3f}" for x in res["eigenvalues"][:4])
                cl = ", ".join(f"{len(c['members'])} ({c['tagged']}){' F' if c['flagged'] else ''}" for c in res["clusters"])
                rows.append(f"| `{name}.onnx` | `{ev}/` | {cls} ({n}) | {expl} | {lam} | {cl} |")
    return "\n".join(rows)


if __name__ == "__main__":
    main()
