"""Reference tiles for Candela's slide reader, from openslide-python (tooling only).

Writes a synthetic slide with `candela make-slide` (the same parameters SlideParityTests uses),
reads a few regions with openslide-python's read_region (RGBA, composited over white as QuPath
and TIAToolbox show glass), and saves them as uint8 (H, W, 3) .npy files with their
coordinates in regions.json. The Swift test writes the same slide and compares its own reads
byte for byte: the regions cover level 0, a level-1 tile read as Candela reads a tile at
0.5 µm per pixel, a partial edge tile of level 1, and a region past the slide's right edge.

    python3 -m venv .cache/slides/venv && .cache/slides/venv/bin/pip install openslide-python numpy pillow
    .cache/slides/venv/bin/python tools/make_slide_fixtures.py .build/debug/candela Tests/Fixtures/slides
"""
import json
import os
import subprocess
import sys

import numpy as np
import openslide
from PIL import Image

candela, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
slide_path = os.path.join(out, "parity.svs")
subprocess.run([candela, "make-slide", "--out", slide_path, "--width", "1536", "--height", "768", "--pieces", "1",
                "--lesions", "3", "--seed", "5"], check=True)
slide = openslide.OpenSlide(slide_path)
regions = [
    {"name": "level0", "x": 600, "y": 300, "level": 0, "width": 96, "height": 80},
    {"name": "level1_tile", "x": 640, "y": 256, "level": 1, "width": 64, "height": 64},
    {"name": "level1_edge", "x": 1280, "y": 640, "level": 1, "width": 128, "height": 64},
    {"name": "past_edge", "x": 1500, "y": 100, "level": 0, "width": 64, "height": 32},
]
for r in regions:
    rgba = slide.read_region((r["x"], r["y"]), r["level"], (r["width"], r["height"]))
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    rgb = np.asarray(Image.alpha_composite(white, rgba).convert("RGB"), dtype=np.uint8)
    np.save(os.path.join(out, r["name"] + ".npy"), rgb)
info = {"openslide_python": openslide.__version__, "openslide": openslide.__library_version__,
        "dimensions": slide.dimensions, "level_downsamples": slide.level_downsamples, "regions": regions,
        "mpp_x": slide.properties.get("openslide.mpp-x")}
with open(os.path.join(out, "regions.json"), "w") as f:
    json.dump(info, f, indent=1)
os.remove(slide_path)
print(json.dumps(info))
