#!/usr/bin/env python3
"""Writes ONNX's own operator node tests, and the "light" model-zoo CNNs, for Candela's engine.

onnx ships the code of its backend node tests (onnx.backend.test.case.node), not their data;
collect_testcases() rebuilds each test: a model plus input and expected output arrays. This
script writes, for every test, OUT/node/<test>/model.onnx, input_<i>.npy, output_<i>.npy and
meta.json (input/output names, tolerances, operator types of the graph). It writes the light
zoo models (onnx/backend/test/data/light) to OUT/light/, as shipped and with random weights, with
the tensors to compare (`write_light_zoo`).

Python here is test tooling only: `make conformance` runs it in an ignored venv, then runs
`candela conformance OUT`. Usage: write_node_tests.py OUT
"""
import copy
import hashlib
import json
import os
import sys
import warnings

import numpy as np
import onnx
from onnx import numpy_helper
from onnx.backend.test.case.node import collect_testcases


def zoo_input(model):
    """The input onnx's runner feeds a light zoo model (arange(n)/n in the input's shape), and its
    name. Older zoo files list their weights as graph inputs too: the input is the one that is not."""
    weights = {t.name for t in model.graph.initializer}
    inp = next(i for i in model.graph.input if i.name not in weights)
    shape = [d.dim_value for d in inp.type.tensor_type.shape.dim]
    n = int(np.prod(shape))
    return inp.name, (np.arange(n, dtype=np.float32) / n).reshape(shape)


def with_random_weights(model, seed=0):
    """The light zoo model with every weight of rank >= 2 (made by ConstantOfShape, all 0.02 in the
    shipped files) replaced by a seeded He-normal initializer, N(0, 2 / fan_in). Rank-1 constants
    (biases, batch-norm statistics) keep their value. With all weights equal, every output row of
    a layer sums the same numbers: a kernel that mixes up rows, columns or taps is invisible, and
    the logits grow to 1e21 (see write_light_zoo)."""
    model = copy.deepcopy(model)
    consts = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    rng = np.random.default_rng(seed)
    kept = []
    for node in model.graph.node:
        if node.op_type == "ConstantOfShape" and node.input[0] in consts:
            shape = [int(s) for s in consts[node.input[0]]]
            if len(shape) >= 2:
                fan_in = int(np.prod(shape[1:]))
                w = (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)
                model.graph.initializer.append(numpy_helper.from_array(w, node.output[0]))
                continue
        kept.append(node)
    del model.graph.node[:]
    model.graph.node.extend(kept)
    return model


REFERENCES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Tests", "Fixtures", "zoo")


def light_zoo_cases():
    """Yields (case, model, input name, input, stored output or None) for the two cases of every
    light zoo model: as shipped (with the zoo's stored output) and with random weights."""
    src = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")
    for name in sorted(os.listdir(src)):
        if not name.endswith(".onnx"):
            continue
        stem = name[: -len(".onnx")]
        shipped = onnx.load(os.path.join(src, name))
        stored = onnx.TensorProto()
        with open(os.path.join(src, stem + "_output_0.pb"), "rb") as f:
            stored.ParseFromString(f.read())
        input_name, x = zoo_input(shipped)
        yield stem, shipped, input_name, x, numpy_helper.to_array(stored)
        yield stem + "_random", with_random_weights(shipped), input_name, x, None


def weights_digest(model):
    """SHA-256 of the model's initializers (names and bytes, sorted by name): the committed
    references name the weights they were computed from, so that a change in numpy's random
    stream fails loudly instead of comparing against another model's outputs."""
    h = hashlib.sha256()
    for t in sorted(model.graph.initializer, key=lambda t: t.name):
        h.update(t.name.encode())
        h.update(np.ascontiguousarray(numpy_helper.to_array(t)).tobytes())
    return h.hexdigest()


def write_light_zoo(dst):
    """Writes every light zoo case (`light_zoo_cases`) as STEM.onnx, STEM.input.npy and
    STEM.checks.json naming the tensors to compare (a graph output or an inner tensor, which
    the engine taps), their expected values (STEM.<i>.npy) and tolerances. The expected values
    are ONNX Runtime's, committed in Tests/Fixtures/zoo by tools/conformance/make_zoo_references.py
    (onnx's own reference evaluator is not used: it disagrees with ONNX Runtime and Candela by
    up to 11 on shufflenet's logits and applies opset 9's Softmax to the wrong axis)."""
    os.makedirs(dst, exist_ok=True)
    zoo = 0
    for case, model, input_name, x, _ in light_zoo_cases():
        ref_path = os.path.join(REFERENCES, case + ".json")
        with open(ref_path) as f:
            ref = json.load(f)
        digest = weights_digest(model)
        if ref["weights_sha256"] != digest:
            raise SystemExit(f"{ref_path}: written for weights {ref['weights_sha256'][:12]}, these are {digest[:12]} "
                             "(numpy's random stream changed?); rerun tools/conformance/make_zoo_references.py")
        checks = []
        for i, check in enumerate(ref["checks"]):
            np.save(os.path.join(dst, f"{case}.{i}.npy"), np.load(os.path.join(REFERENCES, check["file"])))
            checks.append(dict(check, file=f"{case}.{i}.npy"))
        onnx.save(model, os.path.join(dst, case + ".onnx"))
        np.save(os.path.join(dst, case + ".input.npy"), x)
        with open(os.path.join(dst, case + ".checks.json"), "w") as f:
            json.dump({"input": input_name, "checks": checks}, f, indent=1)
        zoo += 1
    return zoo


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
    zoo = write_light_zoo(os.path.join(out, "light"))
    print(f"wrote {written} node tests ({skipped} not tensor-only) and {zoo} zoo models to {out}")


if __name__ == "__main__":
    main(sys.argv[1])
