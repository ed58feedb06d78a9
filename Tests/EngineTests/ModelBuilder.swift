import Foundation
import TestSupport
@testable import Engine

/// Small ONNX models written from a list of nodes, for tests that need a graph of a given shape.
enum ModelBuilder {
    /// Builds a bias-free ONNX model from (op, inputs, output, attributes) and random weights.
    static func model(_ nodes: [(String, [String], String, [(String, [Int])])], weights: [String: [Int]], seed: UInt64) throws -> Model {
        var rng = SeededRandom(seed: seed)
        var g = Onnx_GraphProto()
        var input = Onnx_ValueInfoProto(); input.name = "x"; g.input = [input]
        for (name, shape) in weights.sorted(by: { $0.key < $1.key }) {
            var p = Onnx_TensorProto()
            p.name = name; p.dims = shape.map(Int64.init); p.dataType = 1; p.floatData = rng.tensor(shape).data
            g.initializer.append(p)
        }
        for (op, inputs, output, attrs) in nodes {
            var n = Onnx_NodeProto(); n.opType = op; n.input = inputs; n.output = [output]; n.name = output
            for (k, v) in attrs {
                var a = Onnx_AttributeProto(); a.name = k
                if k == "transB" || k == "group" { a.type = .int; a.i = Int64(v[0]) } else { a.type = .ints; a.ints = v.map(Int64.init) }
                n.attribute.append(a)
            }
            g.node.append(n)
        }
        var out = Onnx_ValueInfoProto(); out.name = nodes.last!.2; g.output = [out]
        var m = Onnx_ModelProto(); m.irVersion = 8; m.graph = g
        var opset = Onnx_OperatorSetIdProto(); opset.version = 17; m.opsetImport = [opset]
        let path = Support.temporaryDirectory() + "/net.onnx"
        try m.serializedData().write(to: URL(fileURLWithPath: path))
        return try Model(path: path)
    }
}
