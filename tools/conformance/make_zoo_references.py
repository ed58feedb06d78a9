#!/usr/bin/env python3
"""Writes Tests/Fixtures/zoo: ONNX Runtime's outputs for the light zoo cases that
write_node_tests.py builds (each model as shipped and with seeded random weights), with the
tolerances `candela conformance` applies. Developer tooling: needs onnxruntime (see
Tests/Fixtures/README.md); CI only reads the committed files.

For each case: CASE.json (the weights' SHA-256, the checks) and CASE.<i>.<tensor>.npy.

- As shipped, every weight is 0.02 and the logits reach 1e13 to 1e31: the softmax output the zoo
  stores (0.001 for every class) is ill-conditioned, since a rounding of 1e-7 relative changes a
  logit by up to 1e14 and any summation order that does not treat every class alike gives another
  softmax. So the logits (the last Softmax's input) are compared to 1e-4 of their largest
  magnitude ("max" scale); the stored output is compared too where the compared tensor stays
  below 1e4 (densenet121's output is its pooled logits, 0.46) and ONNX Runtime reproduces it.
- With random weights (He-normal, logits of order 1): the output at rtol 1e-3, atol 1e-5 and the
  logits at rtol 1e-3, atol 1e-4 of each element ("element" scale).

Usage: make_zoo_references.py (from the repository root, in a venv with onnx and onnxruntime).
"""
import json
import os

import numpy as np
import onnx
import onnxruntime as ort

from write_node_tests import REFERENCES, light_zoo_cases, weights_digest


def run(model, names, input_name, x):
    model = onnx.ModelProto.FromString(model.SerializeToString())
    outputs = {o.name for o in model.graph.output}
    for n in names:
        if n not in outputs:
            model.graph.output.append(onnx.helper.make_empty_tensor_value_info(n))
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(names, {input_name: x})


def main():
    os.makedirs(REFERENCES, exist_ok=True)
    for case, model, input_name, x, stored in light_zoo_cases():
        output = model.graph.output[0].name
        softmax = [n for n in model.graph.node if n.op_type == "Softmax"]
        logits = softmax[-1].input[0] if softmax else None
        names = [output] + ([logits] if logits else [])
        values = dict(zip(names, run(model, names, input_name, x)))
        checks = []
        if stored is not None:
            scale = float(np.abs(values[logits or output]).max())
            if scale < 1e4 and np.allclose(values[output], stored, rtol=1e-3, atol=1e-5):
                checks.append((output, stored, 1e-3, 1e-5, "element"))
            checks.append((logits or output, values[logits or output], 1e-4, 0.0, "max"))
        else:
            checks.append((output, values[output], 1e-3, 1e-5, "element"))
            if logits:
                checks.append((logits, values[logits], 1e-3, 1e-4, "element"))
        described = []
        for i, (tensor, value, rtol, atol, scale) in enumerate(checks):
            file = f"{case}.{i}.{tensor.replace('/', '_')}.npy"
            np.save(os.path.join(REFERENCES, file), np.ascontiguousarray(value, dtype=np.float32))
            described.append({"tensor": tensor, "file": file, "rtol": rtol, "atol": atol, "scale": scale})
        with open(os.path.join(REFERENCES, case + ".json"), "w") as f:
            json.dump({"case": case, "weights_sha256": weights_digest(model), "onnxruntime": ort.__version__,
                       "checks": described}, f, indent=1)
        print(case, ", ".join(f"{c['tensor']} ({c['scale']})" for c in described))


if __name__ == "__main__":
    main()
