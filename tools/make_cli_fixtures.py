#!/usr/bin/env python3
"""Writes the small ONNX files of Tests/Fixtures/cli that the command-line checks feed Candela
(Tests/cli/run.sh). Needs only the onnx package:
.cache/venv-conformance/bin/python tools/make_cli_fixtures.py

- input_with_slash.onnx: one Relu from input `input_1/0` to output `output=1` (names as tf2onnx
  and optimum write them).
- huge_input.onnx: a Relu whose input is declared [1, 3, 100000, 100000] (112 GiB of floats).
- huge_constant.onnx: a ConstantOfShape of shape [2^40, 2^30] (the element count overflows).
"""
import os

import onnx
from onnx import TensorProto, helper

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "Fixtures", "cli")


def save(graph, name, check=True):
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    if check:
        onnx.checker.check_model(m)
    onnx.save(m, os.path.join(OUT, name))


def main():
    os.makedirs(OUT, exist_ok=True)
    x = helper.make_tensor_value_info("input_1/0", TensorProto.FLOAT, [1, 3])
    y = helper.make_tensor_value_info("output=1", TensorProto.FLOAT, [1, 3])
    save(helper.make_graph([helper.make_node("Relu", ["input_1/0"], ["output=1"])], "slash", [x], [y]), "input_with_slash.onnx")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 100000, 100000])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 100000, 100000])
    save(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "huge_input", [x], [y]), "huge_input.onnx")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    shape = helper.make_tensor("s", TensorProto.INT64, [2], [1 << 40, 1 << 30])
    save(helper.make_graph([helper.make_node("ConstantOfShape", ["s"], ["y"])], "huge_constant", [x], [y], initializer=[shape]),
         "huge_constant.onnx", check=False)  # (the checker wants the output's shape, which is the point)


if __name__ == "__main__":
    main()
