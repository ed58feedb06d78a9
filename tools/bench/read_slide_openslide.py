#!/usr/bin/env python3
"""Reads a slide's tiles with openslide-python + NumPy + Pillow, as a Python pipeline would.

The reference for `candela read-slide` in tools/bench/bench_slides.sh: the same tiles (the CSV
`candela read-slide --tiles-csv` writes: level-0 x, y, the level, the region's size there),
each `read_region` at its level, converted to an RGB NumPy array and resized to the tile side
with a box filter (what Candela's resampling does when shrinking), on `--jobs` processes.
Prints one JSON object. Tooling only (needs openslide-python, numpy, pillow).
"""
import argparse
import csv
import json
import multiprocessing as mp
import time

import numpy as np
import openslide
from PIL import Image

_slide = None


def _init(path: str) -> None:
    global _slide
    _slide = openslide.OpenSlide(path)


def _read(args):
    x, y, level, w, h, side = args
    region = _slide.read_region((x, y), level, (w, h)).convert("RGB")
    if (w, h) != (side, side):
        region = region.resize((side, side), Image.Resampling.BOX)
    return int(np.asarray(region, dtype=np.uint8)[0, 0, 0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--slide", required=True)
    ap.add_argument("--tiles", required=True, help="CSV from candela read-slide --tiles-csv")
    ap.add_argument("--tile", type=int, required=True, help="tile side after resampling")
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args()
    with open(a.tiles) as f:
        rows = [(int(r["x"]), int(r["y"]), int(r["level"]), int(r["level_width"]), int(r["level_height"]), a.tile)
                for r in csv.DictReader(f)]
    t0 = time.perf_counter()
    with mp.Pool(a.jobs, initializer=_init, initargs=(a.slide,)) as pool:
        for _ in pool.imap_unordered(_read, rows, chunksize=64):
            pass
    seconds = time.perf_counter() - t0
    print(json.dumps({"tiles": len(rows), "jobs": a.jobs, "read_seconds": seconds, "tiles_per_second": len(rows) / seconds,
                      "openslide_python": openslide.__version__, "openslide": openslide.__library_version__}))


if __name__ == "__main__":
    main()
