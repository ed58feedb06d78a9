#!/usr/bin/env python3
"""Writes ONNX's own operator node tests, and the "light" model-zoo CNNs, for Candela's engine.

onnx ships the code of its backend node tests (onnx.backend.test.case.node), not their data;
collect_testcases() rebuilds each test: a model plus input and expected output arrays. This
script writes, for every test, OUT/node/<test>/model.onnx, input_<i>.npy, output_<i>.npy and
meta.json (input/output names, tolerances, operator types of the graph). It copies the light
zoo models (onnx/backend/test/data/light) with their stored outputs to OUT/light/.

Python here is test tooling only: `make conformance` runs it in an ignored venv, then runs
`candela conformance OUT`. Usage: write_node_tests.py OUT
"""
import json
import os
import shutil
import sys
import warnings

import numpy as np
import onnx
from onnx import numpy_helper
from onnx.backend.test.case.node import collect_testcases


def main(out):
    warnings.filterwarnings("ignore")
    node_dir = os.path.join(out, "node")
    os.makedirs(node_dir, exist_ok=True)
    written = skipped = 0
    for case in collect_testcases():
        if case.kind != "node":
            continue
        graph = case.model.graph
        ops = sorted({n.op_type for n in graph.node if n.domain in ("", "ai.onnx")})
        foreign = sorted({n.domain for n in graph.node if n.domain not in ("", "ai.onnx")})
        if foreign or not case.data_sets:
            skipped += 1
            continue
        inputs, outputs = case.data_sets[0]
        if not all(isinstance(a, np.ndarray) for a in list(inputs) + list(outputs)):
            skipped += 1  # sequences, optionals: not tensors
            continue
        if any(a.dtype.kind in "OSU" for a in list(inputs) + list(outputs)):
            skipped += 1  # string tensors
            continue
        d = os.path.join(node_dir, case.name)
        os.makedirs(d, exist_ok=True)
        onnx.save(case.model, os.path.join(d, "model.onnx"))
        for i, a in enumerate(inputs):
            np.save(os.path.join(d, f"input_{i}.npy"), np.ascontiguousarray(a))
        for i, a in enumerate(outputs):
            np.save(os.path.join(d, f"output_{i}.npy"), np.ascontiguousarray(a))
        opset = max((o.version for o in case.model.opset_import if o.domain in ("", "ai.onnx")), default=0)
        meta = {
            "name": case.name,
            "ops": ops,
            "opset": opset,
            "inputs": [i.name for i in graph.input][: len(inputs)],
            "outputs": [o.name for o in graph.output][: len(outputs)],
            "input_dtypes": [str(a.dtype) for a in inputs],
            "rtol": case.rtol,
            "atol": case.atol,
        }
        with open(os.path.join(d, "meta.json"), "w") as f:
            json.dump(meta, f)
        written += 1
    light_src = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")
    light_dst = os.path.join(out, "light")
    os.makedirs(light_dst, exist_ok=True)
    zoo = 0
    for name in sorted(os.listdir(light_src)):
        if name.endswith(".onnx"):
            stem = name[: -len(".onnx")]
            model = onnx.load(os.path.join(light_src, name))
            ref = onnx.TensorProto()
            with open(os.path.join(light_src, stem + "_output_0.pb"), "rb") as f:
                ref.ParseFromString(f.read())
            shutil.copy(os.path.join(light_src, name), os.path.join(light_dst, name))
            # onnx's runner feeds arange(n)/n in the input's shape.
            # Older zoo files list their weights as graph inputs too: feed the one that is not.
            weights = {t.name for t in model.graph.initializer}
            inp = next(i for i in model.graph.input if i.name not in weights)
            shape = [d.dim_value for d in inp.type.tensor_type.shape.dim]
            n = int(np.prod(shape))
            x = (np.arange(n, dtype=np.float32) / n).reshape(shape)
            np.save(os.path.join(light_dst, stem + ".input.npy"), x)
            np.save(os.path.join(light_dst, stem + ".output.npy"), numpy_helper.to_array(ref))
            zoo += 1
    print(f"wrote {written} node tests ({skipped} not tensor-only) and {zoo} zoo models to {out}")


if __name__ == "__main__":
    main(sys.argv[1])
