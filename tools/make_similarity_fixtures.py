"""Reference values for Candela's heatmap similarities (tooling only; numpy, scipy, scikit-image).

For a few pairs of [0,1] maps (random smooth fields, a map and its noisy copy, a map and its
shift), writes the maps as float32 .npy and, in cases.json, scikit-image's SSIM
(structural_similarity with gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
data_range=1: Wang et al. 2004's settings) and scipy's Spearman rank correlation.

    .cache/slides/venv/bin/python tools/make_similarity_fixtures.py Tests/Fixtures/similarity
"""
import json
import os
import sys

import numpy as np
from scipy.ndimage import gaussian_filter, shift
from scipy.stats import spearmanr
from skimage.metrics import structural_similarity

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(2026)


def smooth(h, w, s):
    m = gaussian_filter(rng.random((h, w)), s)
    return ((m - m.min()) / (m.max() - m.min())).astype(np.float32)


cases = []
a = smooth(32, 48, 3)
pairs = {
    "noisy": (a, np.clip(a + rng.normal(0, 0.1, a.shape), 0, 1).astype(np.float32)),
    "shifted": (a, np.clip(shift(a, (3, -2), mode="nearest"), 0, 1).astype(np.float32)),
    "unrelated": (a, smooth(32, 48, 3)),
    "square": (smooth(20, 20, 2), smooth(20, 20, 1)),
}
for name, (x, y) in pairs.items():
    np.save(os.path.join(out, f"{name}_a.npy"), x)
    np.save(os.path.join(out, f"{name}_b.npy"), y)
    ssim = structural_similarity(x.astype(np.float64), y.astype(np.float64), gaussian_weights=True, sigma=1.5,
                                 use_sample_covariance=False, data_range=1.0)
    rho = spearmanr(x.ravel(), y.ravel()).statistic
    cases.append({"name": name, "ssim": float(ssim), "spearman": float(rho)})
with open(os.path.join(out, "cases.json"), "w") as f:
    json.dump(cases, f, indent=1)
print(json.dumps(cases, indent=1))
