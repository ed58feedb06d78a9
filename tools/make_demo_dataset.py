#!/usr/bin/env python3
"""Synthetic H&E-like demo slides for Candela (tooling only; numpy + pillow).

Each slide is a 128x128 RGB 8-bit image of pink "eosin" tissue with lighter stroma
fibres, speckle and small pale-lavender normal nuclei. "abnormal" slides also carry
1-4 dark purple irregular blobs ("damaged cells"); their ground-truth mask (8-bit
grayscale, 255 inside a blob, 0 elsewhere) is written alongside. "normal" slides have
an all-zero mask.

Everything is deterministic in (seed, index). The generator functions are imported by
tools/train_demo_model.py to make training and evaluation data.

Committed demo set (datasets/demo):
    python3 tools/make_demo_dataset.py --seed 2026 --count 64 --out datasets/demo
"""

from __future__ import annotations

import argparse
import csv
import os

import numpy as np
from PIL import Image

SIZE = 128
LABELS = ("normal", "abnormal")  # class index 0, 1


# ----------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------
def _upsample_bilinear(grid: np.ndarray, size: int) -> np.ndarray:
    """Bilinearly upsample a small (g, g) grid to (size, size), corner-aligned."""
    g = grid.shape[0]
    pos = np.linspace(0.0, g - 1.0, size)
    i0 = np.clip(np.floor(pos).astype(np.int64), 0, g - 2)
    f = pos - i0
    rows = grid[i0, :] * (1.0 - f)[:, None] + grid[i0 + 1, :] * f[:, None]
    out = rows[:, i0] * (1.0 - f)[None, :] + rows[:, i0 + 1] * f[None, :]
    return out


def _smooth_noise(rng: np.random.Generator, size: int, cells=(4, 8, 16), weights=(0.55, 0.3, 0.15)) -> np.ndarray:
    """Low-frequency value noise in roughly [-1, 1] (sum of a few octaves)."""
    acc = np.zeros((size, size), dtype=np.float64)
    for c, w in zip(cells, weights):
        grid = rng.uniform(-1.0, 1.0, size=(c + 1, c + 1))
        acc += w * _upsample_bilinear(grid, size)
    return acc


def _blur3(a: np.ndarray) -> np.ndarray:
    """Cheap separable [1,2,1]/4 blur with edge replication."""
    p = np.pad(a, 1, mode="edge")
    a = (p[:-2, 1:-1] + 2.0 * p[1:-1, 1:-1] + p[2:, 1:-1]) / 4.0
    p = np.pad(a, 1, mode="edge")
    return (p[1:-1, :-2] + 2.0 * p[1:-1, 1:-1] + p[1:-1, 2:]) / 4.0


def _blend(img: np.ndarray, colour, alpha: np.ndarray) -> np.ndarray:
    c = np.asarray(colour, dtype=np.float64).reshape(1, 1, -1) if np.ndim(colour) == 1 else colour
    a = alpha[..., None]
    return img * (1.0 - a) + c * a


# ----------------------------------------------------------------------------------
# generator
# ----------------------------------------------------------------------------------
def generate_slide(rng: np.random.Generator, abnormal: bool, size: int = SIZE):
    """Return (image uint8 (size,size,3) RGB, mask uint8 (size,size))."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)

    # --- eosin background: smooth low-frequency pinks ---------------------------------
    base = np.array([235.0, 170.0, 200.0]) + rng.uniform(-8, 8, size=3)
    deep = np.array([218.0, 128.0, 178.0]) + rng.uniform(-8, 8, size=3)
    light = np.array([246.0, 205.0, 222.0]) + rng.uniform(-4, 4, size=3)
    t = _smooth_noise(rng, size)  # ~[-1, 1]
    img = np.empty((size, size, 3), dtype=np.float64)
    img[:] = base
    img = _blend(img, deep, np.clip(t, 0, 1) * 0.9)
    img = _blend(img, light, np.clip(-t, 0, 1) * 0.7)

    # --- stroma fibres: a few lighter wavy bands ----------------------------------------
    fib = np.zeros((size, size))
    for _ in range(rng.integers(2, 6)):
        ang = rng.uniform(0, np.pi)
        u = xx * np.cos(ang) + yy * np.sin(ang)
        v = -xx * np.sin(ang) + yy * np.cos(ang)
        off = rng.uniform(0, size)
        amp, freq, ph = rng.uniform(2, 9), rng.uniform(0.02, 0.08), rng.uniform(0, 2 * np.pi)
        width = rng.uniform(0.8, 2.2)
        d = v - (off - size / 2) - amp * np.sin(freq * u + ph)
        fib = np.maximum(fib, np.exp(-0.5 * (d / width) ** 2) * rng.uniform(0.35, 0.75))
    img = _blend(img, np.array([250.0, 222.0, 232.0]), fib)

    # --- speckle: sparse light / dark dots -----------------------------------------------
    sp = rng.random((size, size))
    speck = np.where(sp < 0.012, 1.0, 0.0)
    img = _blend(img, np.array([252.0, 232.0, 240.0]), _blur3(speck) * 0.8)
    speck = np.where(sp > 0.994, 1.0, 0.0)
    img = _blend(img, np.array([200.0, 110.0, 160.0]), _blur3(speck) * 0.6)

    # --- normal nuclei: small pale lavender ellipses ----------------------------------
    for _ in range(rng.integers(10, 31)):
        cy, cx = rng.uniform(2, size - 2, size=2)
        ry, rx = rng.uniform(2.0, 3.0, size=2)
        th = rng.uniform(0, np.pi)
        dy, dx = yy - cy, xx - cx
        a = (dx * np.cos(th) + dy * np.sin(th)) / rx
        b = (-dx * np.sin(th) + dy * np.cos(th)) / ry
        r = np.sqrt(a * a + b * b)
        alpha = np.clip((1.0 - r) * 2.5 + 0.5, 0, 1) * rng.uniform(0.6, 0.9)
        col = np.array([180.0, 140.0, 205.0]) + rng.uniform(-12, 12, size=3)
        img = _blend(img, col, alpha)

    # --- abnormal: dark purple irregular blobs ----------------------------------------
    mask = np.zeros((size, size), dtype=bool)
    if abnormal:
        for _ in range(rng.integers(1, 5)):
            r0 = rng.uniform(6.0, 12.0)
            cy, cx = rng.uniform(r0 + 2, size - r0 - 2, size=2)
            aspect = rng.uniform(0.7, 1.0)
            th = rng.uniform(0, np.pi)
            dy, dx = yy - cy, xx - cx
            a = dx * np.cos(th) + dy * np.sin(th)
            b = (-dx * np.sin(th) + dy * np.cos(th)) / aspect
            d = np.sqrt(a * a + b * b)
            phi = np.arctan2(b, a)
            wobble = np.ones_like(phi)
            for k in (2, 3, 5):
                wobble += rng.uniform(0.0, 0.12) * np.cos(k * phi + rng.uniform(0, 2 * np.pi))
            rad = r0 * wobble
            inside = d <= rad
            alpha = np.clip((rad - d) / 2.0 + 0.5, 0.0, 1.0)  # soft ~2 px edge
            # internal texture: chromatin clumps + darker rim
            tex = _smooth_noise(rng, size, cells=(16, 32), weights=(0.6, 0.4))
            col = np.array([80.0, 30.0, 110.0]) + rng.uniform(-10, 10, size=3)
            cimg = np.empty((size, size, 3))
            cimg[:] = col
            cimg += tex[..., None] * np.array([28.0, 18.0, 30.0])
            rim = np.clip(1.0 - np.abs(rad - d) / 2.5, 0, 1)[..., None]
            cimg = cimg * (1.0 - 0.25 * rim)
            img = _blend(img, cimg, alpha * 0.95)
            mask |= inside

    # --- mild Gaussian pixel noise -----------------------------------------------------
    img += rng.normal(0.0, 2.0, size=img.shape)
    img8 = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    mask8 = np.where(mask, 255, 0).astype(np.uint8)
    return img8, mask8


def dataset_labels(seed: int, count: int) -> np.ndarray:
    """Balanced labels (0 normal / 1 abnormal) in a deterministic shuffled order."""
    labels = np.array([i % 2 for i in range(count)], dtype=np.int64)
    rng = np.random.default_rng([seed, 0xC0FFEE])
    rng.shuffle(labels)
    return labels


def generate_dataset(seed: int, count: int):
    """Yield (index, image uint8 HxWx3, mask uint8 HxW, label int) deterministically."""
    labels = dataset_labels(seed, count)
    for i in range(count):
        rng = np.random.default_rng([seed, i])
        img, mask = generate_slide(rng, bool(labels[i]))
        yield i, img, mask, int(labels[i])


def generate_arrays(seed: int, count: int):
    """Return (images uint8 (N,H,W,3), masks uint8 (N,H,W), labels int64 (N,))."""
    imgs = np.empty((count, SIZE, SIZE, 3), dtype=np.uint8)
    masks = np.empty((count, SIZE, SIZE), dtype=np.uint8)
    labels = np.empty((count,), dtype=np.int64)
    for i, img, mask, lab in generate_dataset(seed, count):
        imgs[i], masks[i], labels[i] = img, mask, lab
    return imgs, masks, labels


def write_dataset(seed: int, count: int, out: str) -> None:
    os.makedirs(os.path.join(out, "images"), exist_ok=True)
    os.makedirs(os.path.join(out, "masks"), exist_ok=True)
    rows = []
    width = max(3, len(str(count - 1)))
    for i, img, mask, lab in generate_dataset(seed, count):
        name = f"slide_{i:0{width}d}.png"
        Image.fromarray(img, mode="RGB").save(os.path.join(out, "images", name), optimize=True)
        Image.fromarray(mask, mode="L").save(os.path.join(out, "masks", name), optimize=True)
        rows.append((f"images/{name}", LABELS[lab], f"masks/{name}"))
    with open(os.path.join(out, "labels.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["path", "label", "mask"])
        w.writerows(rows)
    n_ab = sum(1 for r in rows if r[1] == "abnormal")
    print(f"wrote {count} slides ({count - n_ab} normal, {n_ab} abnormal) to {out}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--count", type=int, default=64)
    ap.add_argument("--out", default="datasets/demo")
    args = ap.parse_args()
    write_dataset(args.seed, args.count, args.out)


if __name__ == "__main__":
    main()
