#!/usr/bin/env python3
"""TIFF tiles for Candela's TIFF decoder tests (Tests/Fixtures/images/tiff).

Tooling only. Writes small TIFFs with Pillow (an independent writer) in the layouts tile
datasets meet: uncompressed, LZW, Deflate and PackBits strips, gray, palette, RGBA with
unassociated alpha, big-endian, BigTIFF, tiles; each beside a PNG of the pixels Candela must decode
(alpha composited onto white, as Candela does for PNG). Also a truncated file and a
header declaring 100000 × 100000 pixels.

    .cache/slides/venv/bin/python tools/make_tiff_fixtures.py    # Pillow 13.0.0, numpy 2.4
"""
import os
import struct
import subprocess
import sys

import numpy as np
from PIL import Image

sys.dont_write_bytecode = True
OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "Tests/Fixtures/images/tiff")


def main() -> None:
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(2026)
    rgb = rng.integers(0, 256, size=(30, 40, 3), dtype=np.uint8)
    img = Image.fromarray(rgb, "RGB")
    img.save(f"{OUT}/rgb.png")
    img.save(f"{OUT}/rgb-none.tif", compression=None)
    img.save(f"{OUT}/rgb-lzw.tif", compression="tiff_lzw")
    img.save(f"{OUT}/rgb-deflate.tif", compression="tiff_adobe_deflate")
    img.save(f"{OUT}/rgb-packbits.tif", compression="packbits")
    # Pillow writes neither BigTIFF nor big-endian nor tiles: libtiff's tiffcp (Debian
    # libtiff-tools) rewrites the uncompressed file; the pixels are still Pillow's.
    for args, name in ((["-8", "-c", "lzw"], "rgb-bigtiff.tif"), (["-B", "-c", "none"], "rgb-bigendian.tif"),
                       (["-t", "-w", "16", "-l", "16", "-c", "zip"], "rgb-tiled.tif")):
        subprocess.run(["tiffcp", *args, f"{OUT}/rgb-none.tif", f"{OUT}/{name}"], check=True)
    gray = Image.fromarray(rng.integers(0, 256, size=(30, 40), dtype=np.uint8), "L")
    gray.save(f"{OUT}/gray.png")
    gray.save(f"{OUT}/gray.tif", compression="tiff_lzw")
    pal = img.quantize(colors=16)
    pal.convert("RGB").save(f"{OUT}/palette.png")
    pal.save(f"{OUT}/palette.tif")
    alpha = rng.integers(0, 256, size=(30, 40), dtype=np.uint8)
    rgba = Image.fromarray(np.dstack([rgb, alpha]), "RGBA")
    rgba.save(f"{OUT}/rgba.tif", compression="tiff_lzw")
    # Over white with libtiff's premultiplication: c·a/255 rounded, then + (255 − a).
    pm = (rgb.astype(np.int32) * alpha[..., None].astype(np.int32) + 127) // 255
    over = np.minimum(255, pm + (255 - alpha[..., None].astype(np.int32))).astype(np.uint8)
    Image.fromarray(over, "RGB").save(f"{OUT}/rgba.png")
    data = open(f"{OUT}/rgb-none.tif", "rb").read()
    open(f"{OUT}/truncated.tif", "wb").write(data[: len(data) // 3])
    # A decompression bomb: 126 bytes whose header declares 100000 x 100000 gray pixels.
    tags = [(256, 4, 100000), (257, 4, 100000), (258, 3, 8), (259, 3, 1), (262, 3, 1), (273, 4, 8),
            (277, 3, 1), (278, 4, 100000), (279, 4, 1)]
    ifd = struct.pack("<H", len(tags)) + b"".join(struct.pack("<HHII", t, typ, 1, v) for t, typ, v in tags) + struct.pack("<I", 0)
    open(f"{OUT}/bomb.tif", "wb").write(b"II*\0" + struct.pack("<I", 12) + b"\0\0\0\0" + ifd)
    print("wrote", sorted(os.listdir(OUT)))


if __name__ == "__main__":
    main()
