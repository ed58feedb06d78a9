#!/usr/bin/env python3
"""Writes the small PNG/JPEG files that Tests/ImagingTests decode (Tests/Fixtures/images/).

PNGs are written by hand (zlib + struct) so that bit depth and colour type are exactly what
each test names; JPEGs come from Pillow (baseline, progressive, grayscale). Every image shows
the same 8x6 pattern: R = 30*x, G = 40*y, B = 100 (gray images: G). Corrupt and truncated
copies check that decoding fails with an error instead of crashing.

    .venv/bin/python tools/make_image_fixtures.py
"""
import io
import os
import struct
import zlib

import numpy as np
from PIL import Image

OUT = os.path.join(os.path.dirname(__file__), "..", "Tests", "Fixtures", "images")
W, H = 8, 6


def pattern():
    x, y = np.meshgrid(np.arange(W), np.arange(H))
    return np.stack([30 * x, 40 * y, np.full_like(x, 100)], axis=-1).astype(np.uint8)


def chunk(kind, data):
    c = struct.pack(">I", len(data)) + kind + data
    return c + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png(rows, color_type, depth, plte=None, trns=None):
    """rows: list of bytes (one scanline each, without filter byte)."""
    ihdr = struct.pack(">IIBBBBB", W, H, depth, color_type, 0, 0, 0)
    raw = b"".join(b"\x00" + r for r in rows)
    body = chunk(b"IHDR", ihdr)
    if plte is not None:
        body += chunk(b"PLTE", plte)
    if trns is not None:
        body += chunk(b"tRNS", trns)
    body += chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


def main():
    os.makedirs(OUT, exist_ok=True)
    p = pattern()
    g = p[:, :, 1]
    files = {}
    files["gray8.png"] = png([g[y].tobytes() for y in range(H)], 0, 8)
    files["gray16.png"] = png([(g[y].astype(">u2") * 257).tobytes() for y in range(H)], 0, 16)
    files["rgb8.png"] = png([p[y].tobytes() for y in range(H)], 2, 8)
    files["rgb16.png"] = png([(p[y].astype(">u2") * 257).tobytes() for y in range(H)], 2, 16)
    rgba = np.concatenate([p, np.full((H, W, 1), 255, np.uint8)], axis=-1)
    rgba[0, 0, 3] = 0  # one fully transparent pixel: composited onto white
    files["rgba8.png"] = png([rgba[y].tobytes() for y in range(H)], 6, 8)
    # Palette: 4 colours, index = (x + y) % 4.
    palette = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [200, 100, 50]], np.uint8)
    idx = (np.add.outer(np.arange(H), np.arange(W)) % 4).astype(np.uint8)
    files["palette8.png"] = png([idx[y].tobytes() for y in range(H)], 3, 8, plte=palette.tobytes())
    # Corrupt: flip bytes inside the IDAT payload of rgb8 (zlib/CRC error); truncated: half the file.
    good = bytearray(files["rgb8.png"])
    at = good.index(b"IDAT") + 8
    for i in range(at, at + 6):
        good[i] ^= 0xFF
    files["corrupt.png"] = bytes(good)
    files["truncated.png"] = files["rgb8.png"][: len(files["rgb8.png"]) // 2]

    # JPEGs of a larger, smooth version so that lossy coding stays close to the pattern.
    big = Image.fromarray(p).resize((W * 8, H * 8), Image.NEAREST)
    for name, kwargs, img in [("baseline.jpg", {}, big), ("progressive.jpg", {"progressive": True}, big),
                              ("gray.jpg", {}, big.convert("L"))]:
        b = io.BytesIO()
        img.save(b, format="JPEG", quality=95, subsampling=0 if img.mode == "RGB" else None, **kwargs) \
            if img.mode == "RGB" else img.save(b, format="JPEG", quality=95, **kwargs)
        files[name] = b.getvalue()
    files["truncated.jpg"] = files["baseline.jpg"][: len(files["baseline.jpg"]) // 2]
    # A reserved marker (0xFF02) right after SOI: libjpeg's "unsupported marker" fatal error.
    files["corrupt.jpg"] = b"\xff\xd8\xff\x02" + files["baseline.jpg"][2:]
    files["not-an-image.png"] = b"this is a text file, not a picture\n"
    for name, data in files.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
    print("wrote", len(files), "files to", os.path.normpath(OUT))


if __name__ == "__main__":
    main()
