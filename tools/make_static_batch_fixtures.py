#!/usr/bin/env python3
"""Writes Tests/Fixtures/static: fixed-batch variants of the demo model, as torch.onnx.export
writes them by default, for the tests of `FreeBatch` (docs/engine.md, "Fixed batch").

- demo_static_batch1.onnx: models/demo.onnx with its input fixed at [1,3,64,64] and its Flatten
  replaced by Reshape(x, [1, -1]) (what a static export of `x.view(x.size(0), -1)` folds to).
- mixes_batch.onnx: input [1,4] -> Reshape [2,2] -> ReduceSum over axis 0 -> [2]: a graph that
  merges the batch with another axis, which cannot be re-planned (the engine keeps batch 1).

- demo_external.onnx + demo_external.bin: the demo model with its weights as external data, and
  demo_external.other.bin with the classifier's weights doubled (`external_demo`).

Needs only the onnx package: .cache/venv-conformance/bin/python tools/make_static_batch_fixtures.py
"""
import os

import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "Tests", "Fixtures", "static")


def static_demo():
    m = onnx.load(os.path.join(ROOT, "models", "demo.onnx"))
    dim = m.graph.input[0].type.tensor_type.shape.dim[0]
    dim.Clear()
    dim.dim_value = 1
    for o in m.graph.output:
        d = o.type.tensor_type.shape.dim[0]
        d.Clear()
        d.dim_value = 1
    nodes = []
    for n in m.graph.node:
        if n.op_type == "Flatten":
            shape = numpy_helper.from_array(np.array([1, -1], dtype=np.int64), "static_flatten_shape")
            m.graph.initializer.append(shape)
            nodes.append(helper.make_node("Reshape", [n.input[0], "static_flatten_shape"], list(n.output), name=n.name + "_reshape"))
        else:
            nodes.append(n)
    del m.graph.node[:]
    m.graph.node.extend(nodes)
    del m.graph.value_info[:]
    onnx.checker.check_model(m)
    onnx.save(m, os.path.join(OUT, "demo_static_batch1.onnx"))


def mixes_batch():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])
    shape = numpy_helper.from_array(np.array([2, 2], dtype=np.int64), "shape")
    axes = numpy_helper.from_array(np.array([0], dtype=np.int64), "axes")
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["r"]),
             helper.make_node("ReduceSum", ["r", "axes"], ["y"], keepdims=0)]
    g = helper.make_graph(nodes, "mixes_batch", [x], [y], initializer=[shape, axes])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, os.path.join(OUT, "mixes_batch.onnx"))


def external_demo():
    """demo_external.onnx with its weights in demo_external.bin (ONNX external data), and
    demo_external.other.bin: the same layout with the classifier's weights doubled (tests that a
    changed data file changes the cache key)."""
    m = onnx.load(os.path.join(ROOT, "models", "demo.onnx"))
    for stale in ("demo_external.bin", "demo_external.other.bin"):
        if os.path.exists(os.path.join(OUT, stale)):
            os.remove(os.path.join(OUT, stale))
    onnx.save(m, os.path.join(OUT, "demo_external.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
              location="demo_external.bin", size_threshold=0)
    m = onnx.load(os.path.join(ROOT, "models", "demo.onnx"))
    for t in m.graph.initializer:
        if t.name == "fc.weight":
            t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t) * 2, t.name))
    tmp = os.path.join(OUT, "other")
    os.makedirs(tmp, exist_ok=True)
    onnx.save(m, os.path.join(tmp, "x.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
              location="demo_external.bin", size_threshold=0)
    os.replace(os.path.join(tmp, "demo_external.bin"), os.path.join(OUT, "demo_external.other.bin"))
    os.remove(os.path.join(tmp, "x.onnx"))
    os.rmdir(tmp)


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    static_demo()
    mixes_batch()
    external_demo()
