import Foundation
import SwiftProtobuf
import TestSupport
import XCTest
@testable import Engine
import Tensors

/// Loading errors and the IR's topological order, on small graphs built here with the generated
/// ONNX protobuf types.
final class GraphTests: XCTestCase {
    func node(_ op: String, _ inputs: [String], _ outputs: [String], name: String = "") -> Onnx_NodeProto {
        var n = Onnx_NodeProto()
        n.opType = op
        n.input = inputs
        n.output = outputs
        n.name = name
        return n
    }

    func write(_ nodes: [Onnx_NodeProto], outputs: [String] = ["y"]) throws -> String {
        var g = Onnx_GraphProto()
        var input = Onnx_ValueInfoProto()
        input.name = "x"
        g.input = [input]
        g.node = nodes
        g.output = outputs.map { var o = Onnx_ValueInfoProto(); o.name = $0; return o }
        var m = Onnx_ModelProto()
        m.irVersion = 8
        m.graph = g
        let path = Support.temporaryDirectory() + "/g.onnx"
        try m.serializedData().write(to: URL(fileURLWithPath: path))
        return path
    }

    func testNodesAreSortedTopologically() throws {
        // Written out of order: y = relu(identity(x)) + x
        let path = try write([node("Add", ["b", "x"], ["y"], name: "add"), node("Relu", ["a"], ["b"], name: "relu"),
                              node("Identity", ["x"], ["a"], name: "id")])
        let model = try Model(path: path)
        XCTAssertEqual(model.graph.nodes.map(\.name), ["id", "relu", "add"])
        let x = Tensor(shape: [3], data: [-1, 2, 0.5])
        XCTAssertEqual(try model.forward(x).data, [-1, 4, 1])
        let g = try model.backward(try model.run(["x": x]), seeds: ["y": Tensor(shape: [3], repeating: 1)], wrt: ["x"])["x"]!
        XCTAssertEqual(g.data, [1, 2, 2]) // the skip path adds 1 where relu passes
    }

    func testCycleIsNamed() throws {
        let path = try write([node("Relu", ["y"], ["a"], name: "r1"), node("Relu", ["a"], ["y"], name: "r2")])
        XCTAssertThrowsError(try Model(path: path)) { XCTAssertTrue("\($0)".contains("cycle"), "\($0)") }
    }

    func testUnsupportedOperatorNamesNodeAndOperator() throws {
        let path = try write([node("Einsum", ["x"], ["y"], name: "mix")])
        XCTAssertThrowsError(try Model(path: path)) {
            XCTAssertTrue("\($0)".contains("node 'mix' uses operator 'Einsum'"), "\($0)")
            XCTAssertTrue("\($0)".contains(path))
        }
    }

    func testDanglingInputIsAnError() throws {
        let path = try write([node("Relu", ["nowhere"], ["y"], name: "r")])
        XCTAssertThrowsError(try Model(path: path)) { XCTAssertTrue("\($0)".contains("'nowhere'"), "\($0)") }
    }

    func testMissingAndCorruptFiles() throws {
        XCTAssertThrowsError(try Model(path: "/no/such/model.onnx")) { XCTAssertTrue("\($0)".contains("/no/such/model.onnx")) }
        let junk = Support.temporaryDirectory() + "/junk.onnx"
        try Data([0xFF, 0x12, 0x00, 0x99, 0x41]).write(to: URL(fileURLWithPath: junk))
        XCTAssertThrowsError(try Model(path: junk)) { XCTAssertTrue("\($0)".contains("not a valid ONNX model"), "\($0)") }
    }

    func testShapeErrorNamesTheNode() throws {
        let model = try Model(path: Support.repo("models/demo.onnx"))
        XCTAssertThrowsError(try model.forward(Tensor(shape: [1, 4, 64, 64]))) {
            XCTAssertTrue("\($0)".contains("expects shape"), "\($0)")
        }
        XCTAssertThrowsError(try model.backward(try model.run(["input": Tensor(shape: [1, 3, 64, 64])]),
                                                seeds: [:], wrt: ["no_such_tensor"])) {
            XCTAssertTrue("\($0)".contains("no tensor named 'no_such_tensor'"))
        }
    }

    func testFloat16AndDoubleInitializersAreConverted() throws {
        var t = Onnx_TensorProto()
        t.dims = [3]
        t.dataType = 10 // FLOAT16
        let halves: [Float16] = [1.5, -2, 0.099975586]
        t.rawData = Data(halves.flatMap { h -> [UInt8] in withUnsafeBytes(of: h.bitPattern.littleEndian) { Array($0) } })
        XCTAssertEqual(try ONNXImport.tensor(from: t).data, halves.map(Float.init))
        var d = Onnx_TensorProto()
        d.dims = [2]
        d.dataType = 11
        d.doubleData = [0.25, -4]
        XCTAssertEqual(try ONNXImport.tensor(from: d).data, [0.25, -4])
    }

    /// Initializers in a side file (ONNX external data) are read; a missing file, a range past
    /// its end or a location outside the model's folder is an error naming the initializer.
    func testExternalData() throws {
        let dir = Support.temporaryDirectory()
        let values: [Float] = [10, 20, 30, 40]
        var bytes = Data([0xAA, 0xBB, 0xCC, 0xDD]) // 4 bytes of padding before the tensor
        values.withUnsafeBytes { bytes.append(contentsOf: $0) }
        try bytes.write(to: URL(fileURLWithPath: "\(dir)/weights.bin"))
        func model(location: String, offset: Int = 4, length: Int = 16) throws -> String {
            var c = Onnx_TensorProto()
            c.name = "c"
            c.dims = [4]
            c.dataType = 1
            c.dataLocation = .external
            c.externalData = [("location", location), ("offset", "\(offset)"), ("length", "\(length)")].map {
                var e = Onnx_StringStringEntryProto()
                (e.key, e.value) = ($0.0, $0.1)
                return e
            }
            var g = Onnx_GraphProto()
            var input = Onnx_ValueInfoProto()
            input.name = "x"
            g.input = [input]
            g.initializer = [c]
            g.node = [node("Add", ["x", "c"], ["y"], name: "add")]
            var out = Onnx_ValueInfoProto()
            out.name = "y"
            g.output = [out]
            var m = Onnx_ModelProto()
            m.irVersion = 8
            m.graph = g
            let path = "\(dir)/m-\(location.hashValue)-\(offset)-\(length).onnx"
            try m.serializedData().write(to: URL(fileURLWithPath: path))
            return path
        }
        let loaded = try Model(path: try model(location: "weights.bin"))
        XCTAssertEqual(try loaded.forward(Tensor(shape: [4], data: [1, 2, 3, 4])).data, [11, 22, 33, 44])
        XCTAssertThrowsError(try Model(path: try model(location: "missing.bin"))) {
            XCTAssertTrue("\($0)".contains("initializer 'c': external data file \(dir)/missing.bin not found"), "\($0)")
        }
        XCTAssertThrowsError(try Model(path: try model(location: "weights.bin", offset: 8))) {
            XCTAssertTrue("\($0)".contains("do not fit in"), "\($0)")
        }
        XCTAssertThrowsError(try Model(path: try model(location: "../etc/passwd"))) {
            XCTAssertTrue("\($0)".contains("outside the model's folder"), "\($0)")
        }
    }

    /// `ConvOp.plan`'s array-free geometry (`plainGeometry`) agrees with the general path on
    /// every attribute combination it takes, and leaves the others (auto_pad SAME_*, 1-D, a
    /// kernel_shape that disagrees with the weights, attributes of the wrong length) to it.
    func testConvPlanWithoutArraysMatchesTheGeneralPlan() throws {
        let x = Tensor(shape: [1, 4, 9, 11]), w = Tensor(shape: [6, 2, 3, 5])
        func op(_ set: [String: Attributes.Value]) throws -> ConvOp {
            var a = Attributes(inputCount: 2)
            a.values = set
            return try ConvOp(a)
        }
        let taken: [[String: Attributes.Value]] = [
            [:],
            ["group": .int(2)],
            ["strides": .ints([2, 3]), "pads": .ints([1, 2, 0, 3]), "dilations": .ints([2, 1])],
            ["kernel_shape": .ints([3, 5]), "auto_pad": .string("NOTSET"), "pads": .ints([0, 0, 1, 1])],
            ["auto_pad": .string("VALID"), "pads": .ints([1, 1, 1, 1]), "strides": .ints([1, 2])],
        ]
        for set in taken {
            let conv = try op(set)
            let plain = try XCTUnwrap(conv.plainGeometry(x: x, w: w), "\(set)")
            XCTAssertEqual(plain, try conv.generalPlan(x: x, w: w).geometry, "\(set)")
        }
        let left: [[String: Attributes.Value]] = [
            ["auto_pad": .string("SAME_UPPER")],
            ["auto_pad": .string("SAME_LOWER"), "strides": .ints([2, 2])],
            ["kernel_shape": .ints([3, 3])],
            ["strides": .ints([2])],
            ["pads": .ints([1, 1])],
            ["dilations": .ints([1, 1, 1])],
        ]
        for set in left { XCTAssertNil(try op(set).plainGeometry(x: x, w: w), "\(set)") }
        XCTAssertNil(try op([:]).plainGeometry(x: Tensor(shape: [1, 4, 11]), w: Tensor(shape: [6, 4, 3])), "1-D")
    }
}
