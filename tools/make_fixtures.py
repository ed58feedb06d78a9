#!/usr/bin/env python3
"""Reference fixtures for Candela's Swift tests (Tests/Fixtures/). Tooling only.

    python3 tools/make_fixtures.py            # writes Tests/Fixtures/{ops,demo,README.md}

ops/   one-node ONNX models (opset 17) + random inputs + expected outputs computed with
       torch functional ops (float64 from the float32 inputs, stored as float32),
       independent of ONNX; cross-checked with onnxruntime and onnx.reference.
demo/  inputs, logits, input gradients, layer activation/gradient and Grad-CAM of the
       trained demo model (models/demo.onnx; its weights are read back from the ONNX
       initializers into the torch DemoNet, so fixtures always match the committed model).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import train_demo_model as tdm  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OPSET = 17
IR_VERSION = 8  # what opset 17 shipped with; same as models/demo.onnx
TOL = 1e-5


def f32(a) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(a, dtype=np.float32))


def save(path: str, a: np.ndarray) -> None:
    a = np.ascontiguousarray(a)
    assert a.dtype in (np.float32, np.int64), a.dtype
    np.save(path, a)


# ----------------------------------------------------------------------------------
# operator cases
# ----------------------------------------------------------------------------------
def _t(a):  # float64 torch tensor from a float32 array
    return torch.from_numpy(np.asarray(a, dtype=np.float64))


def op_cases():
    """Yield dicts: name, op, attrs, inputs {name: arr}, inits {name: arr}, ref (float64 torch fn)."""

    def rng(i):
        return np.random.default_rng([2026, i])

    def normal(r, shape, scale=1.0):
        return f32(r.standard_normal(shape) * scale)

    cases = []

    def conv(name, i, xshape, wshape, attrs, bias=True, torch_ref=None):
        r = rng(i)
        x = normal(r, xshape)
        w = normal(r, wshape, 0.3)
        inits = {"W": w}
        if bias:
            inits["B"] = normal(r, (wshape[0],), 0.5)
        cases.append(dict(name=name, op="Conv", attrs=attrs, inputs={"x": x}, inits=inits, ref=torch_ref))

    def conv_ref(stride=1, padding=0, dilation=1, groups=1, pad=None):
        def ref(x, W, B=None):
            if pad is not None:
                x = F.pad(x, pad)
            return F.conv2d(x, W, B, stride=stride, padding=padding, dilation=dilation, groups=groups)
        return ref

    conv("conv_basic", 1, (2, 3, 7, 7), (4, 3, 3, 3), {}, torch_ref=conv_ref())  # all attributes default
    conv("conv_pad_stride", 2, (2, 3, 8, 8), (4, 3, 3, 3),
         dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2]), torch_ref=conv_ref(stride=2, padding=1))
    conv("conv_dilation", 3, (2, 3, 9, 9), (4, 3, 3, 3),
         dict(kernel_shape=[3, 3], pads=[2, 2, 2, 2], dilations=[2, 2]), torch_ref=conv_ref(padding=2, dilation=2))
    conv("conv_groups", 4, (2, 4, 6, 6), (6, 2, 3, 3),
         dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=2), torch_ref=conv_ref(padding=1, groups=2))
    conv("conv_depthwise", 5, (2, 4, 6, 6), (4, 1, 3, 3),
         dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=4), torch_ref=conv_ref(padding=1, groups=4))
    conv("conv_nobias", 6, (2, 3, 6, 6), (5, 3, 3, 3),
         dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1]), bias=False, torch_ref=conv_ref(padding=1))
    # ONNX pads = [top, left, bottom, right] = [0, 1, 1, 0]; F.pad takes (left, right, top, bottom)
    conv("conv_rect", 7, (2, 3, 7, 6), (4, 3, 3, 2),
         dict(kernel_shape=[3, 2], pads=[0, 1, 1, 0], strides=[2, 1]),
         torch_ref=conv_ref(stride=(2, 1), pad=(1, 0, 0, 1)))

    r = rng(10)
    cases.append(dict(name="maxpool_k2", op="MaxPool", attrs=dict(kernel_shape=[2, 2], strides=[2, 2]),
                      inputs={"x": normal(r, (2, 3, 6, 6))}, inits={},
                      ref=lambda x: F.max_pool2d(x, 2, 2)))
    r = rng(11)
    cases.append(dict(name="maxpool_k3_s2_p1", op="MaxPool",
                      attrs=dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
                      inputs={"x": normal(r, (2, 3, 7, 7))}, inits={},
                      ref=lambda x: F.max_pool2d(x, 3, 2, 1)))
    r = rng(12)
    cases.append(dict(name="gap", op="GlobalAveragePool", attrs={},
                      inputs={"x": normal(r, (2, 3, 5, 4))}, inits={},
                      ref=lambda x: F.adaptive_avg_pool2d(x, 1)))
    r = rng(13)
    cases.append(dict(name="flatten", op="Flatten", attrs=dict(axis=1),
                      inputs={"x": normal(r, (2, 3, 4, 5))}, inits={},
                      ref=lambda x: torch.flatten(x, 1)))
    r = rng(14)
    cases.append(dict(name="gemm_transb", op="Gemm", attrs=dict(transB=1),
                      inputs={"x": normal(r, (2, 5))},
                      inits={"B": normal(r, (3, 5), 0.5), "C": normal(r, (3,), 0.5)},
                      ref=lambda x, B, C: torch.addmm(C, x, B.t())))
    r = rng(15)
    cases.append(dict(name="gemm_alpha_beta", op="Gemm", attrs=dict(alpha=0.5, beta=2.0, transA=1),
                      inputs={"x": normal(r, (5, 2))},
                      inits={"B": normal(r, (5, 3), 0.5), "C": normal(r, (2, 3), 0.5)},
                      ref=lambda x, B, C: torch.addmm(C, x.t(), B, beta=2.0, alpha=0.5)))
    r = rng(16)
    cases.append(dict(name="relu", op="Relu", attrs={}, inputs={"x": normal(r, (2, 3, 4, 5))}, inits={},
                      ref=lambda x: F.relu(x)))
    r = rng(17)
    cases.append(dict(name="add_same", op="Add", attrs={},
                      inputs={"x": normal(r, (2, 3, 4, 5)), "y": normal(r, (2, 3, 4, 5))}, inits={},
                      ref=lambda x, y: torch.add(x, y)))
    r = rng(18)
    cases.append(dict(name="add_broadcast", op="Add", attrs={},
                      inputs={"x": normal(r, (2, 3, 4, 5)), "y": normal(r, (1, 3, 1, 1))}, inits={},
                      ref=lambda x, y: torch.add(x, y)))
    r = rng(19)
    cases.append(dict(name="add_broadcast_vec", op="Add", attrs={},
                      inputs={"x": normal(r, (2, 3, 4, 5)), "y": normal(r, (5,))}, inits={},
                      ref=lambda x, y: torch.add(x, y)))
    r = rng(20)
    cases.append(dict(name="batchnorm", op="BatchNormalization", attrs=dict(epsilon=1e-3),
                      inputs={"x": normal(r, (2, 3, 4, 5))},
                      inits={"scale": normal(r, (3,), 0.7), "bias": normal(r, (3,), 0.5),
                             "mean": normal(r, (3,), 0.5), "var": f32(r.uniform(0.2, 2.0, (3,)))},
                      ref=lambda x, scale, bias, mean, var: F.batch_norm(
                          x, mean, var, scale, bias, training=False, eps=float(np.float32(1e-3)))))
    return cases


def build_model(case, out_shape) -> onnx.ModelProto:
    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(a.shape)) for n, a in case["inputs"].items()]
    inits = [numpy_helper.from_array(a, name=n) for n, a in case["inits"].items()]
    node = helper.make_node(case["op"], list(case["inputs"]) + list(case["inits"]), ["out"], name=case["name"],
                            **case["attrs"])
    out = helper.make_tensor_value_info("out", TensorProto.FLOAT, list(out_shape))
    graph = helper.make_graph([node], case["name"], inputs, [out], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="candela-make_fixtures", ir_version=IR_VERSION)
    onnx.checker.check_model(model, full_check=True)
    return model


def make_ops(out_dir: str):
    os.makedirs(out_dir, exist_ok=True)
    from onnx.reference import ReferenceEvaluator

    try:
        import onnxruntime as ort
    except ImportError:
        ort = None
    listing, report = [], []
    for case in op_cases():
        name = case["name"]
        args = [_t(a) for a in case["inputs"].values()] + [_t(a) for a in case["inits"].values()]
        expected = f32(case["ref"](*args).numpy())
        model = build_model(case, expected.shape)
        onnx.save(model, os.path.join(out_dir, f"{name}.onnx"))
        entry = dict(name=name, op=case["op"], model=f"{name}.onnx",
                     attributes={k: v for k, v in case["attrs"].items()},
                     inputs=[], initializers=[],
                     output=dict(name="out", file=f"{name}.out.npy", shape=list(expected.shape)))
        for n, a in case["inputs"].items():
            save(os.path.join(out_dir, f"{name}.{n}.npy"), a)
            entry["inputs"].append(dict(name=n, file=f"{name}.{n}.npy", shape=list(a.shape)))
        for n, a in case["inits"].items():
            save(os.path.join(out_dir, f"{name}.{n}.npy"), a)
            entry["initializers"].append(dict(name=n, file=f"{name}.{n}.npy", shape=list(a.shape)))
        save(os.path.join(out_dir, f"{name}.out.npy"), expected)

        feeds = dict(case["inputs"])
        ref_out = ReferenceEvaluator(model).run(None, feeds)[0]
        d_ref = float(np.abs(ref_out - expected).max())
        d_ort = None
        if ort is not None:
            sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
            d_ort = float(np.abs(sess.run(None, feeds)[0] - expected).max())
        entry["max_abs_diff"] = {"onnx.reference": d_ref, **({"onnxruntime": d_ort} if d_ort is not None else {})}
        worst = max(d_ref, d_ort or 0.0)
        status = "ok" if worst <= TOL else "FAIL"
        report.append((name, case["op"], list(expected.shape), d_ref, d_ort, status))
        if worst > TOL:
            raise SystemExit(f"{name}: ONNX runtime disagrees with torch reference by {worst}")
        listing.append(entry)
    text = json.dumps(dict(opset=OPSET, ir_version=IR_VERSION, dtype="float32", tolerance=TOL,
                           reference="torch functional ops in float64 on the float32 inputs, stored as float32",
                           cases=listing), indent=1)
    # keep short number lists (shapes, pads, ...) on one line
    text = re.sub(r"\[\s*([-0-9.e+,\s]*?)\s*\]", lambda m: "[" + ", ".join(m.group(1).split()).replace(",,", ",") + "]", text)
    with open(os.path.join(out_dir, "cases.json"), "w") as f:
        f.write(text + "\n")
    print(f"{'case':<20} {'op':<20} {'out shape':<16} {'ref-evaluator':>13} {'onnxruntime':>12}")
    for name, op, shp, dr, do, st in report:
        print(f"{name:<20} {op:<20} {str(shp):<16} {dr:13.2e} {(do if do is not None else float('nan')):12.2e} {st}")
    return report


# ----------------------------------------------------------------------------------
# demo-model fixtures
# ----------------------------------------------------------------------------------
def load_demo_model(onnx_path: str, pt_path: str | None):
    """DemoNet with weights read from the ONNX initializers (names = state-dict keys)."""
    m = onnx.load(onnx_path)
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    model = tdm.DemoNet()
    sd = model.state_dict()
    new_sd = {}
    for k, v in sd.items():
        if k.endswith("num_batches_tracked"):
            new_sd[k] = v
            continue
        if k not in inits:
            raise SystemExit(f"{onnx_path} has no initializer {k}")
        a = inits[k]
        assert tuple(a.shape) == tuple(v.shape), (k, a.shape, v.shape)
        new_sd[k] = torch.from_numpy(a.copy())
    unused = set(inits) - set(new_sd)
    if unused:
        raise SystemExit(f"unexpected initializers in {onnx_path}: {sorted(unused)}")
    model.load_state_dict(new_sd)
    model.eval()
    pt_note = "no .pt found; weights taken from the ONNX file only"
    if pt_path and os.path.exists(pt_path):
        pt = torch.load(pt_path, map_location="cpu", weights_only=True)
        keys = [k for k in new_sd if not k.endswith("num_batches_tracked")]  # not exported to ONNX
        diff = max(float((pt[k].float() - new_sd[k].float()).abs().max()) for k in keys)
        rel = os.path.relpath(pt_path, ROOT)
        if diff == 0.0:
            pt_note = f"{rel} (the trained state dict) is identical to the ONNX initializers"
        else:
            pt_note = f"{rel} differs from the ONNX initializers (max abs diff {diff:.1e}); the ONNX weights were used"
            print(f"WARNING: {pt_note}")
    return model, m, pt_note


def make_demo(out_dir: str, onnx_path: str, demo_dir: str, pt_path: str):
    os.makedirs(out_dir, exist_ok=True)
    model, m, pt_note = load_demo_model(onnx_path, pt_path)
    for p in model.parameters():
        p.requires_grad_(False)
    names = ["slide_000", "slide_001"]
    imgs = np.stack([tdm.load_png_rgb(os.path.join(demo_dir, "images", f"{n}.png")) for n in names])
    x = tdm.preprocess(imgs)  # (2,3,64,64)
    x0 = tdm.preprocess(imgs[:1])
    assert torch.equal(x[:1], x0)

    # forward with a hook on the Grad-CAM layer (output of block3.relu)
    layer = dict(model.named_modules())[tdm.GRADCAM_MODULE]
    store = {}

    def hook(_mod, _inp, out):
        out.retain_grad()
        store["act"] = out

    h = layer.register_forward_hook(hook)
    xg = x.clone().requires_grad_(True)
    logits = model(xg)
    logits[:, 1].sum().backward()
    h.remove()
    act = store["act"].detach()
    grad_layer = store["act"].grad.detach()
    grad_input = xg.grad.detach()
    weights = grad_layer.mean(dim=(2, 3), keepdim=True)
    cam_manual = F.relu((weights * act).sum(dim=1))  # (2,h,w)

    cam_note = "plain torch autograd hooks (captum not installed)"
    cam = cam_manual
    try:
        import captum
        from captum.attr import LayerGradCam

        cam_captum = LayerGradCam(model, layer).attribute(x.clone(), target=1, relu_attributions=True)
        cam_captum = cam_captum.detach().squeeze(1)
        d = float((cam_captum - cam_manual).abs().max())
        cam_note = (f"captum {captum.__version__} LayerGradCam(model, model.{tdm.GRADCAM_MODULE})"
                    f".attribute(x, target=1, relu_attributions=True), squeezed to (N,h,w); "
                    f"agrees with the plain-autograd formula to {d:.1e}")
        assert d <= 1e-6, d
        cam = cam_captum
    except ImportError:
        pass

    # cross-check forward values with onnxruntime (logits and the Grad-CAM layer activation)
    _, _, cam_tensor, _ = tdm.describe_graph(onnx_path)
    ort_note = "onnxruntime not installed"
    try:
        import onnxruntime as ort

        m2 = onnx.load(onnx_path)
        m2.graph.output.append(helper.make_tensor_value_info(cam_tensor, TensorProto.FLOAT, None))
        sess = ort.InferenceSession(m2.SerializeToString(), providers=["CPUExecutionProvider"])
        o_logits, o_act = sess.run(["logits", cam_tensor], {"input": x.numpy()})
        dl = float(np.abs(o_logits - logits.detach().numpy()).max())
        da = float(np.abs(o_act - act.numpy()).max())
        ort_note = (f"onnxruntime {ort.__version__} on models/demo.onnx: max abs diff logits {dl:.1e}, "
                    f"`{cam_tensor}` activation {da:.1e}")
        assert dl <= TOL and da <= TOL, (dl, da)
    except ImportError:
        pass

    out = {
        "x": x, "x_slide_000": x0, "preprocessed_slide_000": x0, "logits": logits.detach(),
        "grad_input_t1": grad_input, "gradcam_t1": cam, "activation_layer": act, "grad_layer_t1": grad_layer,
    }
    for k, v in out.items():
        save(os.path.join(out_dir, f"{k}.npy"), f32(v.numpy()))
    meta = dict(
        model="models/demo.onnx", images=[f"datasets/demo/images/{n}.png" for n in names],
        classes=list(tdm.CLASSES), target_class=1, gradcam_layer_tensor=cam_tensor,
        gradcam_layer_module=tdm.GRADCAM_MODULE,
        preprocessing=dict(resize=[tdm.INPUT_SIZE, tdm.INPUT_SIZE], mode="bilinear", align_corners=False,
                           antialias=False, scale=1 / 255, mean=list(tdm.MEAN), std=list(tdm.STD), layout="NCHW RGB"),
        shapes={k: list(v.shape) for k, v in out.items()},
        logits=[[float(a) for a in row] for row in logits.detach().numpy()],
    )
    with open(os.path.join(out_dir, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    print("demo logits:", logits.detach().numpy().tolist())
    print("shapes:", {k: tuple(v.shape) for k, v in out.items()})
    print(cam_note)
    print(ort_note)
    print(pt_note)
    return dict(cam_tensor=cam_tensor, cam_note=cam_note, ort_note=ort_note, pt_note=pt_note,
                logits=logits.detach().numpy(), act_shape=tuple(act.shape))


# ----------------------------------------------------------------------------------
# README
# ----------------------------------------------------------------------------------
def write_readme(path: str, report, demo):
    try:
        import onnxruntime as ort
        ort_v = ort.__version__
    except ImportError:
        ort_v = "not installed"
    try:
        import captum
        cap_v = captum.__version__
    except ImportError:
        cap_v = "not installed"
    rows = "\n".join(
        f"| `{n}` | {op} | {shp} | {dr:.1e} | {('%.1e' % do) if do is not None else 'n/a'} |"
        for n, op, shp, dr, do, _ in report)
    _, c, h, w = demo["act_shape"]
    text = f"""# Test fixtures

Reference data for Candela's Swift tests, generated by `tools/make_fixtures.py` (Python is
tooling only; Candela never runs it). All arrays are NumPy `.npy` files (format 1.0,
little-endian `<f4` float32, C order; `np.save`). No int64 arrays are currently used.

Regenerate from the repository root (after `tools/train_demo_model.py` if the model changed):

```
python3 -m venv .venv && .venv/bin/pip install -r tools/requirements-fixtures.txt
.venv/bin/python tools/make_fixtures.py
```

Generated with Python {sys.version.split()[0]}, torch {torch.__version__}, numpy {np.__version__},
onnx {onnx.__version__}, onnxruntime {ort_v}, captum {cap_v}.

## `ops/` — single-operator forward cases

For each case `NAME`:

- `NAME.onnx`: a one-node ONNX model built with `onnx.helper` (opset {OPSET}, IR version
  {IR_VERSION}, float32). Graph input `x` (and `y` for the binary `Add` cases), graph
  output `out`, weights stored as initializers (`W`, `B` for Conv; `B`, `C` for Gemm
  whose `A` is `x`; `scale`, `bias`, `mean`, `var` for BatchNormalization).
- `NAME.x.npy` (and `NAME.y.npy`): random inputs (fixed seeds, standard normal).
- `NAME.<initializer>.npy`: the same initializer values as plain arrays, for testing a
  kernel without the ONNX loader.
- `NAME.out.npy`: the expected output, computed with **torch functional ops**
  (`F.conv2d`, `F.pad`, `F.max_pool2d`, `F.adaptive_avg_pool2d`, `torch.flatten`,
  `torch.addmm`, `F.relu`, `torch.add`, `F.batch_norm`) in float64 from the float32 inputs,
  then rounded to float32 — independent of ONNX.

`ops/cases.json` lists every case: op, attributes (exactly those set on the node; the
rest are ONNX defaults — `conv_basic` deliberately sets none, not even `kernel_shape`),
model file, inputs / initializers / output with file names and shapes, and the measured
disagreement of the ONNX runtimes with the torch reference. Suggested tolerance: {TOL}.

Notes: `conv_rect` uses kernel 3×2, strides (2,1) and ONNX `pads=[0,1,1,0]`, i.e.
top 0, left 1, bottom 1, right 0 (reference: `F.pad(x, (1,0,0,1))` then `F.conv2d`).
`maxpool_k3_s2_p1` pads with −∞ (inputs are signed, so padding matters).
`gemm_alpha_beta` is `0.5 · xᵀ·B + 2 · C` (`transA=1`, `x` is 5×2, `C` is 2×3);
`gemm_transb` is `x·Bᵀ + C` with `C` of shape (3,) broadcast over rows.
`add_broadcast` adds `y` (1,3,1,1), `add_broadcast_vec` adds `y` (5,) (numpy-style).
`batchnorm` is inference-mode BatchNormalization with epsilon 1e-3.

Max |ONNX runtime − torch reference| (each must be ≤ {TOL}):

| case | op | out shape | onnx.reference | onnxruntime |
|---|---|---|---|---|
{rows}

## `demo/` — the trained demo model (`models/demo.onnx`)

The torch `DemoNet` of `tools/train_demo_model.py` with its weights read back from the
initializers of `models/demo.onnx` (initializer names are the state-dict keys), in eval
mode, float32. Inputs are the committed slides `datasets/demo/images/slide_000.png`
(label normal) and `slide_001.png` (label abnormal), preprocessed exactly as in
`models/demo.md`: RGB uint8 → float32 / 255 → bilinear resize to 64×64
(`align_corners=False`, no antialias) → `(x − 0.5) / 0.25` → NCHW.

| file | shape | content |
|---|---|---|
| `x.npy` | (2,3,64,64) | preprocessed slide_000, slide_001 |
| `x_slide_000.npy` | (1,3,64,64) | slide_000 alone (= `x[0:1]`) |
| `preprocessed_slide_000.npy` | (1,3,64,64) | same values; reference for the PNG decode + resize + normalize chain |
| `logits.npy` | (2,2) | model output (class 0 normal, 1 abnormal) |
| `grad_input_t1.npy` | (2,3,64,64) | ∂ logit[n,1] / ∂ x[n] for each image (gradient of Σₙ logit[n,1]) |
| `activation_layer.npy` | (2,{c},{h},{w}) | activation A at the Grad-CAM layer `{demo["cam_tensor"]}` |
| `grad_layer_t1.npy` | (2,{c},{h},{w}) | ∂ logit[n,1] / ∂ A[n] |
| `gradcam_t1.npy` | (2,{h},{w}) | Grad-CAM for class 1: wₙc = mean over h,w of `grad_layer_t1`; cam = ReLU(Σ_c wₙc · Aₙc); no resize, no normalization |
| `meta.json` | | image paths, classes, layer name, preprocessing, shapes, logits |

Grad-CAM was computed with {demo["cam_note"]}.
Gradients use torch autograd: ReLU' = 0 at x ≤ 0; MaxPool routes the gradient to the
(first) maximum of each window.

Forward cross-check: {demo["ort_note"]}.
Weights: {demo["pt_note"]}.

These fixtures depend on the trained weights: regenerate them whenever
`models/demo.onnx` is retrained.
"""
    with open(path, "w") as f:
        f.write(text)
    print(f"wrote {path}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(ROOT, "Tests", "Fixtures"))
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "demo.onnx"))
    ap.add_argument("--demo", default=os.path.join(ROOT, "datasets", "demo"))
    ap.add_argument("--weights", default=os.path.join(ROOT, "tools", ".cache", "demo_model.pt"),
                    help="optional: only compared against the ONNX initializers")
    args = ap.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    report = make_ops(os.path.join(args.out, "ops"))
    demo = make_demo(os.path.join(args.out, "demo"), args.model, args.demo, args.weights)
    write_readme(os.path.join(args.out, "README.md"), report, demo)


if __name__ == "__main__":
    main()
