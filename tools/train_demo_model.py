#!/usr/bin/env python3
"""Train Candela's demo CNNs on synthetic slides and export them to ONNX.

Tooling only (Candela never needs Python at run time). Needs torch, numpy, pillow, onnx;
onnxruntime (optional) cross-checks the export.

    python3 tools/make_demo_dataset.py --seed 2026 --count 64 --out datasets/demo
    python3 tools/train_demo_model.py                 # models/demo.onnx (5 convolutions, residual)
    python3 tools/train_demo_model.py --arch vgg8 --threads 1   # models/demo-vgg.onnx (8, VGG-style)

Writes the ONNX file, its model card (models/demo.md or models/demo-vgg.md) and the trained
state dict under tools/.cache/ (git-ignored; tools/make_fixtures.py reads the weights back
from models/demo.onnx, so the .pt is only a convenience).
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time

sys.dont_write_bytecode = True  # keep tools/__pycache__ out of the tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from PIL import Image  # noqa: E402

import make_demo_dataset as dd  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLASSES = ("normal", "abnormal")
INPUT_SIZE = 64
MEAN = (0.5, 0.5, 0.5)
STD = (0.25, 0.25, 0.25)
ALLOWED_OPS = {"Conv", "BatchNormalization", "Relu", "MaxPool", "GlobalAveragePool", "Flatten", "Gemm", "Add"}
TRAIN_SEED, TRAIN_COUNT = 1001, 3000
EVAL_SEED, EVAL_COUNT = 1002, 1000


# ----------------------------------------------------------------------------------
# preprocessing (Candela's Swift side does exactly this)
# ----------------------------------------------------------------------------------
def preprocess(images_u8: np.ndarray) -> torch.Tensor:
    """uint8 RGB (N,H,W,3) -> float32 (N,3,64,64).

    float32 /255 -> bilinear resize to 64x64 (half-pixel centres, align_corners=False,
    no antialias) -> (x - 0.5) / 0.25 per channel. RGB order, NCHW.
    """
    x = torch.from_numpy(np.ascontiguousarray(images_u8)).permute(0, 3, 1, 2).to(torch.float32) / 255.0
    x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False, antialias=False)
    mean = torch.tensor(MEAN, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(STD, dtype=torch.float32).view(1, 3, 1, 1)
    return ((x - mean) / std).contiguous()


def load_png_rgb(path: str) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.uint8)


def load_demo_set(root: str):
    """Committed demo set -> (images uint8 (N,H,W,3), labels int64 (N,), names)."""
    imgs, labels, names = [], [], []
    with open(os.path.join(root, "labels.csv"), newline="") as f:
        for row in csv.DictReader(f):
            imgs.append(load_png_rgb(os.path.join(root, row["path"])))
            labels.append(CLASSES.index(row["label"]))
            names.append(row["path"])
    return np.stack(imgs), np.array(labels, dtype=np.int64), names


# ----------------------------------------------------------------------------------
# model
# ----------------------------------------------------------------------------------
class ConvBNReLU(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=False)

    def forward(self, x):
        return self.relu(self.bn(self.conv(x)))


class ResidualBlock(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.relu1 = nn.ReLU(inplace=False)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.relu2 = nn.ReLU(inplace=False)

    def forward(self, x):
        y = self.relu1(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu2(y + x)


class DemoNet(nn.Module):
    """64x64 RGB -> 2 logits (0 normal, 1 abnormal)."""

    cam_module = "block3.relu"

    def __init__(self):
        super().__init__()
        self.block1 = ConvBNReLU(3, 16)      # 64x64
        self.pool1 = nn.MaxPool2d(2, 2)      # -> 32x32
        self.block2 = ConvBNReLU(16, 32)
        self.pool2 = nn.MaxPool2d(2, 2)      # -> 16x16
        self.res = ResidualBlock(32)
        self.block3 = ConvBNReLU(32, 64)     # Grad-CAM layer: block3.relu output (64x16x16)
        self.gap = nn.AdaptiveAvgPool2d(1)   # -> GlobalAveragePool
        self.flatten = nn.Flatten(1)         # -> Flatten(axis=1)
        self.fc = nn.Linear(64, 2)           # -> Gemm(transB=1)

    def forward(self, x):
        x = self.pool1(self.block1(x))
        x = self.pool2(self.block2(x))
        x = self.res(x)
        x = self.block3(x)
        return self.fc(self.flatten(self.gap(x)))


GRADCAM_MODULE = DemoNet.cam_module


class DemoVGG(nn.Module):
    """The deeper demo model: 64x64 RGB -> 2 logits, eight VGG-style convolutions. It exists for
    the model-parameter randomization check, whose finding about guided backprop (Adebayo et al.
    2018) concerns deep networks; the architecture was fixed before it was trained, once."""

    cam_module = "block8.relu"

    def __init__(self):
        super().__init__()
        self.block1 = ConvBNReLU(3, 16)      # 64x64
        self.block2 = ConvBNReLU(16, 16)
        self.pool1 = nn.MaxPool2d(2, 2)      # -> 32x32
        self.block3 = ConvBNReLU(16, 32)
        self.block4 = ConvBNReLU(32, 32)
        self.pool2 = nn.MaxPool2d(2, 2)      # -> 16x16
        self.block5 = ConvBNReLU(32, 64)
        self.block6 = ConvBNReLU(64, 64)
        self.pool3 = nn.MaxPool2d(2, 2)      # -> 8x8
        self.block7 = ConvBNReLU(64, 128)
        self.block8 = ConvBNReLU(128, 128)   # Grad-CAM layer: block8.relu output (128x8x8)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.fc = nn.Linear(128, 2)

    def forward(self, x):
        x = self.pool1(self.block2(self.block1(x)))
        x = self.pool2(self.block4(self.block3(x)))
        x = self.pool3(self.block6(self.block5(x)))
        x = self.block8(self.block7(x))
        return self.fc(self.flatten(self.gap(x)))


# For each --arch: the network, its default ONNX path, state-dict path and model card, the ops
# its export must contain, the CAM tensor's shape, and the architecture paragraph of the card.
ARCHS = {
    "demo": dict(net=DemoNet, out="models/demo.onnx", weights="tools/.cache/demo_model.pt", card="demo.md",
                 title="Demo model", needs=("BatchNormalization", "Add", "Flatten"), cam_shape="64×16×16",
                 text="""`block1` Conv(3→16, 3×3, pad 1, no bias) + BatchNorm + ReLU → MaxPool 2 →
`block2` Conv(16→32) + BN + ReLU → MaxPool 2 →
`res` residual block on 32 channels (Conv+BN+ReLU, Conv+BN, Add with block input, ReLU) →
`block3` Conv(32→64) + BN + ReLU → GlobalAveragePool → Flatten → `fc` Gemm(64→2)."""),
    "vgg8": dict(net=DemoVGG, out="models/demo-vgg.onnx", weights="tools/.cache/demo_vgg_model.pt", card="demo-vgg.md",
                 title="Deeper demo model", needs=("BatchNormalization", "Flatten"), cam_shape="128×8×8",
                 text="""VGG-style, every block Conv(3×3, pad 1, no bias) + BatchNorm + ReLU:
`block1` 3→16, `block2` 16→16, MaxPool 2 → `block3` 16→32, `block4` 32→32, MaxPool 2 →
`block5` 32→64, `block6` 64→64, MaxPool 2 → `block7` 64→128, `block8` 128→128 →
GlobalAveragePool → Flatten → `fc` Gemm(128→2). It was made for the model-parameter
randomization check (docs/methods.md): Adebayo et al.'s finding that guided backprop barely
changes when the weights are re-drawn concerns deep networks, and the 5-convolution demo model
is too shallow to show it. The architecture was fixed before training, and it was trained once."""),
}


# ----------------------------------------------------------------------------------
# training
# ----------------------------------------------------------------------------------
def augment(x: torch.Tensor, g: torch.Generator, m: torch.Tensor | None = None):
    """Random flips / 90-degree rotations (label-preserving); applied to masks m too if given."""
    if torch.rand((), generator=g) < 0.5:
        x = torch.flip(x, dims=(3,))
        m = None if m is None else torch.flip(m, dims=(3,))
    if torch.rand((), generator=g) < 0.5:
        x = torch.flip(x, dims=(2,))
        m = None if m is None else torch.flip(m, dims=(2,))
    k = int(torch.randint(0, 4, (), generator=g))
    if k:
        x = torch.rot90(x, k, dims=(2, 3))
        m = None if m is None else torch.rot90(m, k, dims=(2, 3))
    return x if m is None else (x, m)


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, bs: int = 250) -> float:
    model.eval()
    correct = 0
    for i in range(0, len(x), bs):
        correct += int((model(x[i:i + bs]).argmax(1) == y[i:i + bs]).sum())
    return correct / len(x)


def train(model, xtr, ytr, epochs: int, bs: int, lr: float, seed: int, mtr=None, loc_weight: float = 0.0):
    """Cross-entropy training. With loc_weight > 0 (opt-in, off by default) an auxiliary
    loss pushes the per-position class-evidence map of the Grad-CAM layer,
    D = sum_c (W[1,c] - W[0,c]) A_c + (b1 - b0), towards the blob masks mtr (N,1,16,16),
    which makes Grad-CAM land on the blobs by construction."""
    g = torch.Generator().manual_seed(seed)
    store = {}
    hook = None
    if loc_weight > 0:
        def _keep(_m, _i, out):
            store["a"] = out
        hook = dict(model.named_modules())[model.cam_module].register_forward_hook(_keep)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * ((len(xtr) + bs - 1) // bs)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    for ep in range(epochs):
        model.train()
        perm = torch.randperm(len(xtr), generator=g)
        tot, n, t0 = 0.0, 0, time.time()
        for i in range(0, len(xtr), bs):
            idx = perm[i:i + bs]
            yb = ytr[idx]
            if loc_weight > 0:
                xb, mb = augment(xtr[idx], g, mtr[idx])
            else:
                xb = augment(xtr[idx], g)
            loss = F.cross_entropy(model(xb), yb)
            if loc_weight > 0:
                w, b = model.fc.weight, model.fc.bias
                d = torch.einsum("nchw,c->nhw", store["a"], w[1] - w[0]) + (b[1] - b[0])
                loss = loss + loc_weight * F.binary_cross_entropy_with_logits(d, mb[:, 0])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            tot += float(loss) * len(idx)
            n += len(idx)
        print(f"epoch {ep + 1}/{epochs}: loss {tot / n:.4f} ({time.time() - t0:.1f}s)", flush=True)
    if hook is not None:
        hook.remove()


def gradcam_backward(model: nn.Module, x: torch.Tensor, objective):
    """One backward pass of the scalar objective(logits): Grad-CAM at the model's `cam_module`
    (channel weights = spatial mean of the gradient, ReLU; (N,1,h,w), not upsampled) and the
    gradient at the input (N,C,H,W)."""
    model.eval()
    store = {}

    def _keep(_m, _i, out):
        out.retain_grad()
        store["a"] = out

    h = dict(model.named_modules())[model.cam_module].register_forward_hook(_keep)
    xx = x.clone().requires_grad_(True)
    objective(model(xx)).backward()
    h.remove()
    a, g = store["a"].detach(), store["a"].grad
    return F.relu((g.mean(dim=(2, 3), keepdim=True) * a).sum(1, keepdim=True)), xx.grad


def gradcam_localization(model: nn.Module, x: torch.Tensor, masks_u8: np.ndarray):
    """Grad-CAM (class 1) on images with blobs, upsampled bilinearly to the mask size.

    Returns (fraction whose CAM maximum lies inside the mask, fraction inside the mask
    dilated by 8 px = one CAM cell, mean share of CAM mass inside the 8 px dilation)."""
    cam, _ = gradcam_backward(model, x, lambda y: y[:, 1].sum())
    size = masks_u8.shape[1:]
    up = F.interpolate(cam, size=size, mode="bilinear", align_corners=False)[:, 0].numpy()
    m = torch.from_numpy((masks_u8 > 0).astype(np.float32))[:, None]
    m8 = (F.max_pool2d(m, 17, 1, 8)[:, 0] > 0).numpy()
    m0 = m[:, 0].numpy() > 0
    idx = [int(u.argmax()) for u in up]
    p0 = float(np.mean([m0[i].flat[j] for i, j in enumerate(idx)]))
    p8 = float(np.mean([m8[i].flat[j] for i, j in enumerate(idx)]))
    mass = float(np.mean([u[k].sum() / max(u.sum(), 1e-12) for u, k in zip(up, m8)]))
    return p0, p8, mass


# ----------------------------------------------------------------------------------
# export
# ----------------------------------------------------------------------------------
def export_onnx(model: nn.Module, path: str) -> None:
    model.eval()
    torch.onnx.export(
        model,
        (torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE),),
        path,
        dynamo=False,
        opset_version=17,
        input_names=["input"],
        output_names=["logits"],
        dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}},
        # PRESERVE + eval(): BatchNormalization stays a separate node (EVAL would fuse it
        # into the Conv); constant folding off so nothing else is rewritten.
        training=torch.onnx.TrainingMode.PRESERVE,
        do_constant_folding=False,
    )


def attr_str(a) -> str:
    import onnx

    v = onnx.helper.get_attribute_value(a)
    if isinstance(v, float):
        v = float(np.float32(v))
        v = f"{v:.6g}"
    elif isinstance(v, (list, tuple)):
        v = "[" + ",".join(str(e) for e in v) + "]"
    return f"{a.name}={v}"


def describe_graph(path: str, needs=ARCHS["demo"]["needs"]):
    """Return (op_types in order, lines of a compact graph dump, gradcam tensor name)."""
    import onnx

    m = onnx.load(path)
    onnx.checker.check_model(m)
    ops = [n.op_type for n in m.graph.node]
    bad = sorted(set(ops) - ALLOWED_OPS)
    if bad:
        raise SystemExit(f"exported graph uses ops outside the allowed list: {bad}")
    for need in needs:
        if need not in ops:
            raise SystemExit(f"exported graph lacks {need}")
    # Grad-CAM layer: output of the last Relu feeding GlobalAveragePool
    gap = [n for n in m.graph.node if n.op_type == "GlobalAveragePool"]
    assert len(gap) == 1
    producer = {o: n for n in m.graph.node for o in n.output}
    cam = gap[0].input[0]
    assert producer[cam].op_type == "Relu", producer[cam].op_type
    inits = {i.name: list(i.dims) for i in m.graph.initializer}
    lines = []
    for n in m.graph.node:
        ins = [f"{i}{inits[i]}" if i in inits else i for i in n.input]
        attrs = " ".join(attr_str(a) for a in n.attribute)
        lines.append(f"{n.op_type:<18} {', '.join(ins)} -> {', '.join(n.output)}" + (f"  [{attrs}]" if attrs else ""))
    return ops, lines, cam, m


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--loc-weight", type=float, default=0.0,
                    help="opt-in auxiliary Grad-CAM localization loss on the masks (default 0: off)")
    ap.add_argument("--arch", choices=sorted(ARCHS), default="demo",
                    help="demo: the 5-convolution residual demo model; vgg8: the deeper VGG-style one")
    ap.add_argument("--demo", default=os.path.join(ROOT, "datasets", "demo"))
    ap.add_argument("--out", help="ONNX path (default: the architecture's file under models/)")
    ap.add_argument("--weights", help="state dict path (default: under tools/.cache/)")
    args = ap.parse_args()
    arch = ARCHS[args.arch]
    args.out = args.out or os.path.join(ROOT, arch["out"])
    args.weights = args.weights or os.path.join(ROOT, arch["weights"])

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    torch.use_deterministic_algorithms(True)

    t0 = time.time()
    tr_img, tr_mask, tr_y = dd.generate_arrays(TRAIN_SEED, TRAIN_COUNT)
    mtr = F.max_pool2d(torch.from_numpy((tr_mask > 0).astype(np.float32))[:, None], 8, 8)  # (N,1,16,16)
    ev_img, _, ev_y = dd.generate_arrays(EVAL_SEED, EVAL_COUNT)
    xtr, ytr = preprocess(tr_img), torch.from_numpy(tr_y)
    xev, yev = preprocess(ev_img), torch.from_numpy(ev_y)
    demo_img, demo_y, demo_names = load_demo_set(args.demo)
    demo_mask = np.stack([np.asarray(Image.open(os.path.join(args.demo, n.replace("images/", "masks/", 1))))
                          for n in demo_names])
    xdemo, ydemo = preprocess(demo_img), torch.from_numpy(demo_y)
    print(f"data: {len(xtr)} train (seed {TRAIN_SEED}), {len(xev)} eval (seed {EVAL_SEED}), "
          f"{len(xdemo)} committed demo images ({time.time() - t0:.1f}s)")

    model = arch["net"]()
    t1 = time.time()
    train(model, xtr, ytr, args.epochs, args.batch_size, args.lr, args.seed, mtr, args.loc_weight)
    train_time = time.time() - t1
    model.eval()
    acc_tr = accuracy(model, xtr, ytr)
    acc_ev = accuracy(model, xev, yev)
    acc_demo = accuracy(model, xdemo, ydemo)
    print(f"accuracy: train {acc_tr:.4f}, held-out generated {acc_ev:.4f} ({len(xev)}), "
          f"committed demo set {acc_demo:.4f} ({len(xdemo)})")
    if acc_ev < 0.95 or acc_demo < 0.95:
        print("WARNING: held-out accuracy below 95 %", file=sys.stderr)
    ab = demo_y == 1
    loc = gradcam_localization(model, xdemo[torch.from_numpy(ab)], demo_mask[ab])
    print(f"Grad-CAM localization on the {int(ab.sum())} abnormal demo images: max inside mask {loc[0]:.2f}, "
          f"max within 8 px of mask {loc[1]:.2f}, CAM mass within 8 px of mask {loc[2]:.2f} "
          f"(that region covers {float((F.max_pool2d(torch.from_numpy((demo_mask[ab] > 0).astype(np.float32))[:, None], 17, 1, 8) > 0).float().mean()):.2f} of the image)")

    os.makedirs(os.path.dirname(args.weights), exist_ok=True)
    torch.save(model.state_dict(), args.weights)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    export_onnx(model, args.out)
    ops, lines, cam, _ = describe_graph(args.out, arch["needs"])
    size = os.path.getsize(args.out)
    print(f"wrote {args.out} ({size} bytes), weights {args.weights}")
    print("op types:", " ".join(ops))
    print("Grad-CAM layer tensor:", cam)
    print("graph:\n  " + "\n  ".join(lines))

    # optional cross-check with onnxruntime
    ort_note = "onnxruntime not installed; export not cross-checked"
    try:
        import onnxruntime as ort

        sess = ort.InferenceSession(args.out, providers=["CPUExecutionProvider"])
        with torch.no_grad():
            ref = model(xdemo).numpy()
        got = sess.run(["logits"], {"input": xdemo.numpy()})[0]
        diff = float(np.abs(ref - got).max())
        ort_note = f"onnxruntime {ort.__version__}: max |torch - onnxruntime| logits on the 64 demo images = {diff:.2e}"
        print(ort_note)
    except ImportError:
        print(ort_note)

    write_md(os.path.join(os.path.dirname(args.out), arch["card"]), args, ops, lines, cam, size,
             acc_tr, acc_ev, acc_demo, len(xev), len(xdemo), ort_note, train_time, loc, int(ab.sum()))


def write_md(path, args, ops, lines, cam, size, acc_tr, acc_ev, acc_demo, n_ev, n_demo, ort_note, train_time,
             loc, n_ab):
    import onnx

    counts = {}
    for o in ops:
        counts[o] = counts.get(o, 0) + 1
    arch = ARCHS[args.arch]
    n_params = sum(p.numel() for p in arch["net"]().parameters())
    text = f"""# {arch["title"]} (`{os.path.relpath(args.out, ROOT)}`)

A small CNN trained on the synthetic H&E-like slides of `tools/make_demo_dataset.py`. It
tells a **normal** slide (pink tissue, stroma fibres, small pale-lavender nuclei) from an
**abnormal** one (the same plus 1–4 dark purple "damaged cell" blobs). It is a demo model
for Candela's explainers, not a medical model.

## Interface

| | |
|---|---|
| input | `input`, float32, shape `(N, 3, 64, 64)`, NCHW, RGB, dynamic batch `N` |
| output | `logits`, float32, shape `(N, 2)` (raw logits, no softmax) |
| classes | index 0 = `normal`, index 1 = `abnormal` |
| Grad-CAM layer | `{cam}` (output of the last Relu, {arch["cam_shape"]}, fed to GlobalAveragePool) |
| opset / IR | ONNX opset 17, IR version {onnx.load(args.out).ir_version} |
| file size | {size} bytes, {n_params} parameters |

## Preprocessing (exactly)

1. Decode the PNG as RGB, 8 bits per channel (the demo slides are 128×128).
2. Convert to float32 and divide by 255.
3. Resize to 64×64 with bilinear interpolation, half-pixel centres (`align_corners=False`),
   no antialiasing: `torch.nn.functional.interpolate(x, size=(64, 64), mode="bilinear",
   align_corners=False, antialias=False)`. For the 128→64 demo slides this is exactly the
   mean of each 2×2 block.
4. Normalize per channel: `(x - 0.5) / 0.25` (mean 0.5, std 0.25 for R, G, B).
5. Lay out as NCHW, channel order R, G, B.

## Architecture

{arch["text"]}

Ops used: {", ".join(f"{k} ×{v}" for k, v in counts.items())}. BatchNormalization nodes are
kept separate (exported with `training=TrainingMode.PRESERVE` on a model in eval mode and
`do_constant_folding=False`), epsilon 1e-5, inference mode.

Graph (op, inputs → outputs, attributes; initializer shapes in brackets):

```
{chr(10).join(lines)}
```

## Accuracy (measured when this file was written)

| set | images | accuracy |
|---|---|---|
| training set (generated, seed {TRAIN_SEED}) | {TRAIN_COUNT} | {acc_tr * 100:.2f} % |
| held-out generated set (seed {EVAL_SEED}) | {n_ev} | {acc_ev * 100:.2f} % |
| committed demo set `datasets/demo` (seed 2026) | {n_demo} | {acc_demo * 100:.2f} % |

Export check: {ort_note}.

Grad-CAM (class 1, layer `{cam}`, {arch["cam_shape"].split("×", 1)[1]}, upsampled bilinearly to 128×128) on the {n_ab}
abnormal demo slides: its maximum lies inside a blob mask for {loc[0] * 100:.0f} % of them and
within 8 px (one CAM cell) of a blob for {loc[1] * 100:.0f} %; {loc[2] * 100:.0f} % of the CAM mass lies
within 8 px of a blob. {("The model was trained on labels only, so this is what the classifier learned by itself: its evidence tends to form a ring around a blob (the last layer sees about 68 px of the 128 px slide) rather than a peak on it." if args.arch == "demo" else "The model was trained on labels only, so this is what the classifier learned by itself.") if args.loc_weight == 0 else f"The model was trained with the auxiliary localization loss (--loc-weight {args.loc_weight}), so Grad-CAM lands on the blobs by construction."}

## Training

{TRAIN_COUNT} freshly generated slides (seed {TRAIN_SEED}, balanced), random flips and 90°
rotations, {"cross-entropy on the labels only" if args.loc_weight == 0 else f"cross-entropy plus {args.loc_weight} × an auxiliary localization loss (BCE between the per-position evidence map Σ_c (W₁c − W₀c)·A_c + b₁ − b₀ at the Grad-CAM layer and the 8×8-max-pooled blob masks)"}, AdamW (lr {args.lr}, weight decay 1e-4, one-cycle schedule), batch {args.batch_size},
{args.epochs} epochs, torch seed {args.seed}, {args.threads} CPU threads
(took {train_time:.0f} s here). Torch {torch.__version__}, numpy {np.__version__}, onnx {onnx.__version__}.

## Regenerate

From the repository root, in a venv with `tools/requirements-fixtures.txt` installed:

```
python3 tools/make_demo_dataset.py --seed 2026 --count 64 --out datasets/demo
python3 tools/train_demo_model.py --arch {args.arch} --epochs {args.epochs} --batch-size {args.batch_size} --lr {args.lr} --seed {args.seed} --threads {args.threads} --loc-weight {args.loc_weight}
{"python3 tools/make_fixtures.py   # Tests/Fixtures depend on this model's weights" if args.arch == "demo" else ""}
```

Training is seeded and uses deterministic algorithms, but bit-identical weights are only
expected with the same torch version and CPU{"; the Swift test fixtures in `Tests/Fixtures/demo` must be regenerated whenever the model is retrained" if args.arch == "demo" else ""}. The trained state dict is also kept at
`{os.path.relpath(args.weights, ROOT)}` (git-ignored).
"""
    with open(path, "w") as f:
        f.write(text)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
