#!/usr/bin/env python3
"""Exports the benchmark / parity CNNs to ONNX (opset 17) under .cache/models/.

Models (random weights, torch.manual_seed(0), eval mode, input "input" NCHW 1x3x224x224 with a
dynamic batch axis, output "logits"):

  resnet18, mobilenet_v2, vgg11_bn, densenet121   torchvision architectures, weights=None
  efficientnet_same                               a small EfficientNet-style net (MBConv blocks:
                                                  1x1 expand, depthwise 3x3/5x5 stride 1 and 2,
                                                  squeeze-and-excitation, SiLU as x*sigmoid(x),
                                                  BatchNorm) whose Conv nodes all use
                                                  auto_pad="SAME_UPPER" (TensorFlow "SAME")

Random BatchNorm layers would be near-identities (mean 0, var 1, gamma 1, beta 0), which tests
little. So every BatchNorm gets a random affine (gamma in [0.5, 1.5], beta ~ N(0, 0.1)) and its
running statistics are then calibrated on a few random batches (train mode, cumulative average):
activations stay in a realistic range and the normalisation does real work.

torch cannot export auto_pad, so efficientnet_same is exported with an explicit F.pad before each
stride-2 conv (TF SAME: the odd extra pixel at the end) and symmetric padding on stride-1 convs;
the graph is then rewritten: Pad+Conv -> Conv(auto_pad=SAME_UPPER, no pads), and every other
Conv whose explicit pads equal the SAME_UPPER pads -> Conv(auto_pad=SAME_UPPER). Each rewrite is
checked against the shapes from ONNX shape inference, and onnxruntime must then give the same
logits as torch.

BatchNormalization nodes are kept in the graphs (export with training=PRESERVE on the eval-mode
model); --fold-bn gives torch's default export instead, with BatchNorm folded into the Convs.

Every export is checked with onnx.checker and against torch with onnxruntime. The script is
idempotent: files that exist are skipped unless --force.

Python is tooling only. Usage:
  .venv/bin/python tools/bench/export_models.py [--force] [--models a,b] [--out DIR]
"""
import argparse
import collections
import math
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F
from onnx import helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from fixture_common import import_torchvision  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = ROOT / ".cache" / "models"
OPSET = 17
SIZE = 224
ALL_MODELS = ["resnet18", "mobilenet_v2", "vgg11_bn", "densenet121", "efficientnet_same"]


def import_torchvision_models():
    """torchvision.models, importable next to a CPU-only torch (see fixture_common)."""
    import_torchvision()
    import torchvision.models as models

    return models


# ---------------------------------------------------------------- EfficientNet-style, TF SAME


def same_pads(size, kernel, stride, dilation=1):
    """TF SAME / ONNX SAME_UPPER padding of one spatial axis: (begin, end), extra at the end."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


class SameConv(nn.Module):
    """Conv2d with TF "SAME" padding for a known input size.

    Stride 1 with an odd kernel: symmetric padding in the conv itself. Otherwise an explicit
    F.pad (begin, end) in front of an unpadded conv; the ONNX rewrite folds both into auto_pad.
    """

    def __init__(self, cin, cout, k, stride, size, groups=1, bias=False):
        super().__init__()
        (pt, pb), (pl, pr) = same_pads(size, k, stride), same_pads(size, k, stride)
        self.explicit = None
        if pt == pb and pl == pr:
            self.conv = nn.Conv2d(cin, cout, k, stride, padding=(pt, pl), groups=groups, bias=bias)
        else:
            self.explicit = (pl, pr, pt, pb)
            self.conv = nn.Conv2d(cin, cout, k, stride, padding=0, groups=groups, bias=bias)
        self.out_size = math.ceil(size / stride)

    def forward(self, x):
        if self.explicit is not None:
            x = F.pad(x, self.explicit)
        return self.conv(x)


def silu(x):
    return x * torch.sigmoid(x)


class ConvBNAct(nn.Module):
    def __init__(self, cin, cout, k, stride, size, groups=1, act=True):
        super().__init__()
        self.conv = SameConv(cin, cout, k, stride, size, groups=groups)
        self.bn = nn.BatchNorm2d(cout, eps=1e-3)
        self.act = act
        self.out_size = self.conv.out_size

    def forward(self, x):
        x = self.bn(self.conv(x))
        return silu(x) if self.act else x


class SqueezeExcite(nn.Module):
    def __init__(self, channels, reduced):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)  # -> GlobalAveragePool
        self.reduce = SameConv(channels, reduced, 1, 1, 1, bias=True)
        self.expand = SameConv(reduced, channels, 1, 1, 1, bias=True)

    def forward(self, x):
        s = self.pool(x)
        s = silu(self.reduce(s))
        s = torch.sigmoid(self.expand(s))
        return x * s


class MBConv(nn.Module):
    def __init__(self, cin, cout, expand, k, stride, size, se_ratio=0.25):
        super().__init__()
        mid = cin * expand
        self.expand = ConvBNAct(cin, mid, 1, 1, size) if expand != 1 else None
        self.depthwise = ConvBNAct(mid, mid, k, stride, size, groups=mid)
        self.se = SqueezeExcite(mid, max(1, int(cin * se_ratio)))
        self.project = ConvBNAct(mid, cout, 1, 1, self.depthwise.out_size, act=False)
        self.residual = stride == 1 and cin == cout
        self.out_size = self.depthwise.out_size

    def forward(self, x):
        y = self.expand(x) if self.expand is not None else x
        y = self.project(self.se(self.depthwise(y)))
        return x + y if self.residual else y


class EfficientNetSame(nn.Module):
    # (expand, kernel, stride, out channels)
    BLOCKS = [
        (1, 3, 1, 16),
        (4, 3, 2, 24),
        (4, 3, 1, 24),
        (4, 5, 2, 40),
        (4, 5, 1, 40),
        (4, 3, 2, 80),
        (4, 3, 1, 80),
        (4, 5, 1, 112),
        (4, 5, 2, 192),
        (4, 3, 1, 192),
    ]

    def __init__(self, size=SIZE, num_classes=1000):
        super().__init__()
        self.stem = ConvBNAct(3, 32, 3, 2, size)
        size, cin = self.stem.out_size, 32
        blocks = []
        for expand, k, stride, cout in self.BLOCKS:
            b = MBConv(cin, cout, expand, k, stride, size)
            blocks.append(b)
            size, cin = b.out_size, cout
        self.blocks = nn.Sequential(*blocks)
        self.head = ConvBNAct(cin, 640, 1, 1, size)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(640, num_classes)

    def forward(self, x):
        x = self.head(self.blocks(self.stem(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


# ---------------------------------------------------------------- ONNX rewrite to auto_pad


def _constant_values(model):
    vals = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for n in model.graph.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    vals[n.output[0]] = numpy_helper.to_array(a.t)
    return vals


def _fold_constant_subgraph(model, names):
    """Evaluates tensors that depend on constants only (torch exports F.pad's pads as a chain of
    ConstantOfShape/Concat/Reshape/Slice/Transpose/Cast nodes); returns {name: array}."""
    from onnx.reference import ReferenceEvaluator

    producer = {o: n for n in model.graph.node for o in n.output}
    graph_inputs = {i.name for i in model.graph.input}
    inits = {t.name for t in model.graph.initializer}
    keep, stack = {}, list(names)
    while stack:
        name = stack.pop()
        if name in graph_inputs:
            raise RuntimeError(f"{name} depends on a graph input: not a constant")
        if name in inits or not name:
            continue
        node = producer[name]
        if node.output[0] not in keep:  # key nodes by output name: protobuf wrappers' id() is not stable
            keep[node.output[0]] = node
            stack.extend(node.input)
    nodes = [n for n in model.graph.node if n.output[0] in keep]
    used = {i for n in nodes for i in n.input}
    graph = helper.make_graph(
        nodes, "fold", [],
        [helper.make_tensor_value_info(n, onnx.TensorProto.UNDEFINED, None) for n in names],
        [t for t in model.graph.initializer if t.name in used],
    )
    sub = helper.make_model(graph, opset_imports=model.opset_import)
    return dict(zip(names, ReferenceEvaluator(sub).run(None, {})))


def _attr(node, name, default=None):
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _spatial_shape(shapes, name):
    dims = shapes.get(name)
    if dims is None or len(dims) < 3 or any(not isinstance(d, int) or d <= 0 for d in dims[2:]):
        raise RuntimeError(f"no static spatial shape for {name}: {dims}")
    return dims[2:]


def rewrite_same_upper(model):
    """Pad+Conv -> Conv(auto_pad=SAME_UPPER); Conv with explicit SAME pads -> auto_pad too."""
    # First turn the Pad nodes' computed pads into initializers, so shapes infer through them.
    consts = _constant_values(model)
    pad_inputs = sorted({i for n in model.graph.node if n.op_type == "Pad" for i in n.input[1:] if i and i not in consts})
    for name, value in _fold_constant_subgraph(model, pad_inputs).items():
        model.graph.initializer.append(numpy_helper.from_array(np.asarray(value), name))
        nodes = [n for n in model.graph.node if name not in n.output]
        del model.graph.node[:]
        model.graph.node.extend(nodes)
    _drop_unused(model)

    inferred = onnx.shape_inference.infer_shapes(model)
    shapes = {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
        dims = vi.type.tensor_type.shape.dim
        shapes[vi.name] = [d.dim_value if d.HasField("dim_value") else d.dim_param for d in dims]
    consts = _constant_values(model)
    consumers = collections.defaultdict(list)
    for n in model.graph.node:
        for i in n.input:
            consumers[i].append(n)
    producer = {o: n for n in model.graph.node for o in n.output}

    removed, folded, converted = set(), 0, 0
    for conv in [n for n in model.graph.node if n.op_type == "Conv"]:
        w = consts[conv.input[1]]
        kernel = list(w.shape[2:])
        strides = list(_attr(conv, "strides", [1] * len(kernel)))
        dilations = list(_attr(conv, "dilations", [1] * len(kernel)))
        rank = len(kernel)
        conv_pads = list(_attr(conv, "pads", [0] * 2 * rank))
        if _attr(conv, "auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            raise RuntimeError(f"{conv.name}: already has auto_pad")
        src = conv.input[0]
        pad_node = producer.get(src)
        extra = [0] * 2 * rank
        fold = pad_node is not None and pad_node.op_type == "Pad"
        if fold:
            mode = _attr(pad_node, "mode", b"constant")
            pads = consts.get(pad_node.input[1])
            has_value = len(pad_node.input) > 2 and pad_node.input[2]
            value = consts.get(pad_node.input[2]) if has_value else np.zeros(1, np.float32)
            if len(consumers[src]) != 1 or mode not in (b"constant", "constant") or pads is None:
                raise RuntimeError(f"{pad_node.name}: cannot fold into {conv.name}")
            if value is None or np.any(np.asarray(value) != 0):
                raise RuntimeError(f"{pad_node.name}: non-zero or unknown pad value")
            pads = [int(p) for p in pads]
            full = len(pads) // 2
            if pads[0] or pads[1] or pads[full] or pads[full + 1]:
                raise RuntimeError(f"{pad_node.name}: pads on batch/channel axes: {pads}")
            extra = pads[2:full] + pads[full + 2:]
            src = pad_node.input[0]
        in_spatial = _spatial_shape(shapes, src)
        want = [same_pads(in_spatial[i], kernel[i], strides[i], dilations[i]) for i in range(rank)]
        want = [b for b, _ in want] + [e for _, e in want]
        have = [conv_pads[i] + extra[i] for i in range(2 * rank)]
        if have != want:
            raise RuntimeError(f"{conv.name}: pads {have} are not SAME_UPPER {want} for input {in_spatial}")
        if fold:
            conv.input[0] = src
            removed.add(pad_node.output[0])
            folded += 1
        else:
            converted += 1
        keep = [a for a in conv.attribute if a.name != "pads"]
        del conv.attribute[:]
        conv.attribute.extend(keep)
        conv.attribute.append(helper.make_attribute("auto_pad", "SAME_UPPER"))

    nodes = [n for n in model.graph.node if n.output[0] not in removed]
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    _drop_unused(model)
    return folded, converted


def _drop_unused(model):
    """Removes nodes whose outputs nothing reads (the folded pads chains), and unused initializers."""
    while True:
        used = {i for n in model.graph.node for i in n.input} | {o.name for o in model.graph.output}
        dead = {n.output[0] for n in model.graph.node if not any(o in used for o in n.output)}
        if not dead:
            break
        nodes = [n for n in model.graph.node if n.output[0] not in dead]
        del model.graph.node[:]
        model.graph.node.extend(nodes)
    used = {i for n in model.graph.node for i in n.input}
    inits = [t for t in model.graph.initializer if t.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(inits)


# ---------------------------------------------------------------- building and exporting


def build(name):
    torch.manual_seed(0)
    if name == "efficientnet_same":
        net = EfficientNetSame()
    else:
        models = import_torchvision_models()
        net = getattr(models, name)(weights=None)
    randomize_batchnorm(net)
    return net.eval()


@torch.no_grad()
def randomize_batchnorm(net, batches=3, batch_size=8):
    bns = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    g = torch.Generator().manual_seed(1)
    for m in bns:
        m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
        m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the calibration batches
    net.train()
    for _ in range(batches):
        net(torch.randn(batch_size, 3, SIZE, SIZE, generator=g))
    for m in bns:
        m.momentum = 0.1  # back to the default, which the exported attribute shows
    net.eval()


def export(net, path, fold_bn=False):
    x = torch.randn(1, 3, SIZE, SIZE)
    # PRESERVE keeps BatchNormalization nodes (inference form, one output) in an eval-mode
    # model; EVAL (torch's default) folds each BatchNorm into the Conv before it.
    mode = torch.onnx.TrainingMode.EVAL if fold_bn else torch.onnx.TrainingMode.PRESERVE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net, (x,), str(path),
            dynamo=False,
            opset_version=OPSET,
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
            do_constant_folding=True,
            training=mode,
        )


def check_with_ort(net, path, tol=1e-4):
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    worst = 0.0
    for batch, seed in ((1, 10), (2, 11)):
        x = np.random.default_rng(seed).standard_normal((batch, 3, SIZE, SIZE)).astype(np.float32)
        with torch.no_grad():
            ref = net(torch.from_numpy(x)).numpy()
        got = sess.run(["logits"], {"input": x})[0]
        if got.shape != ref.shape:
            raise RuntimeError(f"{path.name}: ORT shape {got.shape} != torch {ref.shape}")
        rel = float(np.max(np.abs(got - ref)) / max(float(np.max(np.abs(ref))), 1e-30))
        worst = max(worst, rel)
    if worst > tol:
        raise RuntimeError(f"{path.name}: ORT vs torch max relative error {worst:.3e} > {tol:g}")
    return worst


def histogram(path):
    m = onnx.load(str(path), load_external_data=False)
    return collections.Counter(n.op_type for n in m.graph.node)


def describe(path):
    hist = histogram(path)
    size = path.stat().st_size
    ops = ", ".join(f"{op}:{c}" for op, c in sorted(hist.items(), key=lambda kv: (-kv[1], kv[0])))
    print(f"  {path.name}: {size / 1e6:.1f} MB, {sum(hist.values())} nodes")
    print(f"    {ops}")


def make(name, out, force, fold_bn):
    path = out / f"{name}.onnx"
    if path.exists() and not force:
        print(f"{name}: exists, skipped (--force to re-export)")
        describe(path)
        return
    t0 = time.time()
    net = build(name)
    tmp = out / f".{name}.tmp.onnx"
    if name == "efficientnet_same":
        with tempfile.TemporaryDirectory() as d:
            raw = Path(d) / "raw.onnx"
            export(net, raw, fold_bn)
            model = onnx.load(str(raw))
        folded, converted = rewrite_same_upper(model)
        onnx.checker.check_model(model, full_check=True)
        onnx.save(model, str(tmp))
        convs = [n for n in model.graph.node if n.op_type == "Conv"]
        bad = [n.name for n in convs if _attr(n, "auto_pad") not in (b"SAME_UPPER", "SAME_UPPER")]
        if bad or any(n.op_type == "Pad" for n in model.graph.node):
            raise RuntimeError(f"rewrite left Pad nodes or Convs without SAME_UPPER: {bad}")
        note = f"{folded} Pad+Conv folded, {converted} Conv pads converted; all {len(convs)} Conv auto_pad=SAME_UPPER"
    else:
        export(net, tmp, fold_bn)
        onnx.checker.check_model(onnx.load(str(tmp)), full_check=True)
        note = "exported"
    try:
        rel = check_with_ort(net, tmp)
    except Exception:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)
    print(f"{name}: {note}; ORT vs torch max rel error {rel:.2e} ({time.time() - t0:.1f} s)")
    describe(path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    ap.add_argument("--models", default=",".join(ALL_MODELS), help="comma-separated subset of: " + ", ".join(ALL_MODELS))
    ap.add_argument("--force", action="store_true", help="re-export files that exist")
    ap.add_argument("--fold-bn", action="store_true",
                    help="let torch fold BatchNorm into Conv (its default); without it the graphs keep "
                         "BatchNormalization nodes. Use with --force to replace existing files")
    args = ap.parse_args()
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in names if m not in ALL_MODELS]
    if unknown:
        ap.error(f"unknown model(s): {', '.join(unknown)}")
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    for name in names:
        make(name, args.out, args.force, args.fold_bn)


if __name__ == "__main__":
    main()
