#!/usr/bin/env python3
"""LIME parity fixtures: the `lime` package's own maps on the demo model (tooling only).

For items 0 (slide_000, normal, target 0) and 1 (slide_001, abnormal, target 1) of
Tests/Fixtures/demo/x.npy, this writes to Tests/Fixtures/lime/:

    segments_x{i}.npy      SLIC superpixels of the image (skimage.segmentation.slic,
                           n_segments=50, compactness=10, start_label=0), float32 (64,64) labels
    lime_x{i}_t{t}_s{k}.npy lime's coefficients painted per superpixel, float32 (64,64), for
                           lime seeds k = 0..4 (random_state=k)

lime is called as Candela's `mode=lime` documents: LimeImageExplainer(kernel_width=0.25)
.explain_instance(image, classifier_fn, labels=(t,), top_labels=None, hide_color=None,
num_samples=1000, batch_size=16, segmentation_fn=<the saved segments>), where image is the
model's [0,1] RGB input (x * 0.25 + 0.5) and classifier_fn normalizes it back and returns the
demo model's softmax (onnxruntime). `meta.json` records the versions and lime's own
seed-to-seed agreement (Pearson r between its maps), the yardstick for Candela's agreement.

    python3 -m venv .cache/venv-lime && .cache/venv-lime/bin/pip install lime scikit-image onnxruntime numpy
    .cache/venv-lime/bin/python tools/make_lime_fixtures.py
"""

import json
import os

import numpy as np
import onnxruntime as ort
import skimage
from importlib.metadata import version
from lime import lime_image
from skimage.segmentation import slic

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "Fixtures", "lime")
SEEDS = range(5)


def main():
    os.makedirs(OUT, exist_ok=True)
    lime_image.tqdm = lambda it, **kw: it  # lime wraps its loop in a progress bar
    session = ort.InferenceSession(os.path.join(ROOT, "models", "demo.onnx"))
    name = session.get_inputs()[0].name

    def classifier(images):
        x = ((np.asarray(images, dtype=np.float32) - 0.5) / 0.25).transpose(0, 3, 1, 2)
        logits = session.run(None, {name: np.ascontiguousarray(x)})[0].astype(np.float64)
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    x = np.load(os.path.join(ROOT, "Tests", "Fixtures", "demo", "x.npy"))
    meta = {"versions": {"lime": version("lime"),
                         "scikit-image": skimage.__version__, "onnxruntime": ort.__version__, "numpy": np.__version__},
            "cases": []}
    for item, target in [(0, 0), (1, 1)]:
        image = (x[item].transpose(1, 2, 0) * 0.25 + 0.5).astype(np.float64)
        segments = slic(image, n_segments=50, compactness=10, start_label=0)
        np.save(os.path.join(OUT, f"segments_x{item}.npy"), segments.astype(np.float32))
        maps = []
        for seed in SEEDS:
            explainer = lime_image.LimeImageExplainer(kernel_width=0.25, random_state=seed)
            e = explainer.explain_instance(image, classifier, labels=(target,), top_labels=None, hide_color=None,
                                           num_samples=1000, batch_size=16, segmentation_fn=lambda _: segments)
            weights = dict(e.local_exp[target])
            m = np.vectorize(lambda s: weights.get(s, 0.0))(segments).astype(np.float32)
            np.save(os.path.join(OUT, f"lime_x{item}_t{target}_s{seed}.npy"), m)
            maps.append(m.ravel())
        r = [float(np.corrcoef(maps[i], maps[j])[0, 1]) for i in range(len(maps)) for j in range(i + 1, len(maps))]
        meta["cases"].append({"item": item, "target": target, "segments": int(segments.max() + 1),
                              "lime_seed_to_seed_r": {"min": min(r), "median": float(np.median(r))}})
        print(f"item {item}: {segments.max() + 1} superpixels; lime seed-to-seed r min {min(r):.3f}, median {np.median(r):.3f}")
    with open(os.path.join(OUT, "meta.json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
