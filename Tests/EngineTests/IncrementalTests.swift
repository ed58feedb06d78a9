import Foundation
import TestSupport
import XCTest
@testable import Engine
import Tensors

/// Incremental inference must give what the whole forward pass of each patched input gives.
final class IncrementalTests: XCTestCase {
    /// Patches at the corners, the edges and inside, of several sizes, on a model; compared with
    /// the ordinary batched pass of the full patched inputs.
    func check(_ model: Model, x: Tensor, sizes: [(Int, Int)], seed: UInt64, file: StaticString = #filePath, line: UInt = #line) throws {
        var rng = SeededRandom(seed: seed)
        let pass = try model.run([model.inputName: x])
        let (c, h, w) = (x.shape[1], x.shape[2], x.shape[3])
        for (ph, pw) in sizes {
            let ys = [0, h - ph, 0, h - ph, (h - ph) / 2, rng.int(0...(h - ph)), rng.int(0...(h - ph))]
            let xs = [0, w - pw, w - pw, 0, (w - pw) / 2, rng.int(0...(w - pw)), rng.int(0...(w - pw))]
            let values = rng.tensor([ys.count, c, ph, pw], -2, 2)
            let fast = try model.incrementalOutputs(clean: pass, patches: InputPatches(values: values, ys: ys, xs: xs))
            var full: [Tensor] = []
            for b in 0..<ys.count {
                var t = x
                for ch in 0..<c { for i in 0..<ph { for j in 0..<pw {
                    t.data[(ch * h + ys[b] + i) * w + xs[b] + j] = values.data[((b * c + ch) * ph + i) * pw + j]
                } } }
                full.append(t)
            }
            let expected = try model.run([model.inputName: Tensor.stack(full)], keepAll: false).outputs
            XCTAssertEqual(fast.count, expected.count, file: file, line: line)
            for (a, e) in zip(fast, expected) {
                XCTAssertEqual(a.shape, e.shape, file: file, line: line)
                let scale = max(1, e.data.map { abs($0) }.max() ?? 0)
                XCTAssertLessThan(a.maxAbsDifference(e) / scale, 2e-5, "patch \(ph)×\(pw)", file: file, line: line)
            }
        }
    }

    func testDemoModelOptimizedAndAsWritten() throws {
        let x = try NPY.read(Support.fixture("demo/x_slide_000.npy"))
        try check(try Model(path: Support.repo("models/demo.onnx")), x: x, sizes: [(16, 16), (8, 8), (1, 1), (5, 13), (64, 64)], seed: 1)
        try check(try Model(path: Support.repo("models/demo.onnx"), optimize: false), x: x, sizes: [(16, 16), (3, 7)], seed: 2)
    }

    func testVGGFixtureModel() throws {
        let model = try Model(path: Support.fixture("vgg/model.onnx"))
        let x = try NPY.read(Support.fixture("vgg/x.npy"))
        let one = Tensor(shape: [1] + x.shape.dropFirst(), data: Array(x.data[0..<(x.count / x.shape[0])]))
        try check(model, x: one, sizes: [(8, 8), (16, 16)], seed: 3)
    }

    /// A graph with every kind of region step: strided, dilated, SAME-padded, grouped and 1×1
    /// strided convolutions, max pooling in ceil mode, average pooling with and without counted
    /// padding (the latter runs batched), BatchNormalization, a per-channel Mul, a residual Add,
    /// a channel Concat, then global pooling and Gemm. Input 37×41 → 19×20 → 10×11 → 5×6.
    func testEveryRegionStep() throws {
        var rng = SeededRandom(seed: 4)
        var initializers: [String: Tensor] = [:]
        var nodes: [Node] = []
        func attributes(_ values: [String: Attributes.Value], inputs: Int = 1) -> Attributes {
            var a = Attributes(inputCount: inputs)
            a.values = values
            return a
        }
        func add(_ op: String, _ inputs: [String], _ output: String, _ values: [String: Attributes.Value] = [:]) throws {
            let a = attributes(values, inputs: inputs.count)
            nodes.append(Node(name: output, opType: op, inputs: inputs, outputs: [output], op: try OperatorRegistry.table[op]!(a)))
        }
        func conv(_ input: String, _ output: String, c: Int, m: Int, k: Int, group: Int = 1, _ values: [String: Attributes.Value]) throws {
            initializers["\(output).w"] = rng.tensor([m, c / group, k, k], -0.5, 0.5)
            initializers["\(output).b"] = rng.tensor([m], -0.1, 0.1)
            var v = values
            v["group"] = .int(group)
            try add("Conv", [input, "\(output).w", "\(output).b"], output, v)
        }
        try conv("x", "c1", c: 3, m: 8, k: 3, ["strides": .ints([2, 2]), "pads": .ints([1, 0, 2, 1])])
        try add("Relu", ["c1"], "r1")
        try add("MaxPool", ["r1"], "p1", ["kernel_shape": .ints([3, 3]), "strides": .ints([2, 2]), "pads": .ints([1, 1, 1, 1]), "ceil_mode": .int(1)])
        try conv("p1", "c2", c: 8, m: 8, k: 3, ["dilations": .ints([2, 2]), "pads": .ints([2, 2, 2, 2])])
        try conv("p1", "c3", c: 8, m: 8, k: 3, group: 8, ["auto_pad": .string("SAME_UPPER")])
        initializers["scale"] = rng.tensor([8, 1, 1], 0.5, 1.5)
        try add("Mul", ["c3", "scale"], "m3")
        try add("Add", ["c2", "m3"], "a1")
        for (name, lo) in [("bn.g", Float(0.5)), ("bn.b", -0.5), ("bn.m", -0.5), ("bn.v", 0.5)] {
            initializers[name] = rng.tensor([8], lo, lo + 1)
        }
        nodes.append(Node(name: "bn", opType: "BatchNormalization", inputs: ["a1", "bn.g", "bn.b", "bn.m", "bn.v"], outputs: ["n1"],
                          op: try BatchNormalizationOp(attributes([:], inputs: 5))))
        try add("AveragePool", ["n1"], "q1", ["kernel_shape": .ints([3, 3]), "pads": .ints([1, 1, 1, 1]), "count_include_pad": .int(1)])
        try add("Concat", ["q1", "n1"], "cat", ["axis": .int(1)])
        try conv("cat", "c4", c: 16, m: 4, k: 1, ["strides": .ints([2, 2])])
        try add("AveragePool", ["c4"], "q3", ["kernel_shape": .ints([3, 3]), "pads": .ints([1, 1, 1, 1])])
        try add("GlobalAveragePool", ["q3"], "gap")
        try add("Flatten", ["gap"], "flat", ["axis": .int(1)])
        initializers["fc.w"] = rng.tensor([5, 4])
        try add("Gemm", ["flat", "fc.w"], "y", ["transB": .int(1)])
        let graph = try Graph(inputs: [GraphInput(name: "x", shape: [nil, 3, 37, 41])], outputs: ["y", "cat"],
                              initializers: initializers, nodes: nodes)
        let model = try Model(path: "synthetic", graph: graph, kernels: .best)
        let x = rng.tensor([1, 3, 37, 41])
        try check(model, x: x, sizes: [(1, 1), (6, 9), (16, 16), (37, 41)], seed: 5)

        // A 1×1 change stays a window up to the Concat; the unpadded-average pool runs whole.
        // (The graph as written: the optimized one fuses c1's Relu.)
        let written = try Model(path: "synthetic", graph: graph, optimize: false, kernels: .best)
        try check(written, x: x, sizes: [(1, 1), (6, 9)], seed: 6)
        let pass = try written.run(["x": x])
        let run = try written.incrementalPass(clean: pass, patches: InputPatches(values: rng.tensor([2, 3, 1, 1]), ys: [0, 20], xs: [40, 7]))
        for name in ["c1", "r1", "p1", "c2", "c3", "m3", "a1", "n1", "q1", "cat", "c4"] {
            XCTAssertTrue(run.windowed.contains(name), "\(name) is not computed on a window")
        }
        XCTAssertFalse(run.windowed.contains("q3"), "q3 should run on whole tensors")
        XCTAssertTrue(run.state["a1"] == nil && run.state["cat"] != nil, "tensors are dropped after their last reader, graph outputs kept")
    }

    /// Along one axis: the outputs a change reaches, and the inputs they read.
    func testReach() {
        // 3×3, stride 1, pad 1 over 10 positions: a change at [4, 6) reaches outputs 3...6.
        var r = Incremental.reach([4], size: 2, extent: 10, kernel: 3, stride: 1, dilation: 1, pad: 1)
        XCTAssertEqual(r.out, [3]); XCTAssertEqual(r.size, 4); XCTAssertEqual(r.read, [2]); XCTAssertEqual(r.readSize, 6)
        // At the border fewer outputs are reached ([0, 2) reaches 0...2, [8, 10) reaches 7...9);
        // the first span's reads reach into the padding.
        r = Incremental.reach([0, 8], size: 2, extent: 10, kernel: 3, stride: 1, dilation: 1, pad: 1)
        XCTAssertEqual(r.out, [0, 7]); XCTAssertEqual(r.size, 3); XCTAssertEqual(r.read, [-1, 6])
        // Spans of one size for all: [4, 6) needs 4 outputs, so [0, 2)'s span grows to 0...3 and
        // [8, 10)'s moves inward to 6...9.
        r = Incremental.reach([0, 4, 8], size: 2, extent: 10, kernel: 3, stride: 1, dilation: 1, pad: 1)
        XCTAssertEqual(r.out, [0, 3, 6]); XCTAssertEqual(r.size, 4)
        // 7×7 stride 2 pad 3 (a ResNet stem) over 224 → 112: a 16-wide window at 100 reaches
        // outputs 49...59 (2·49 − 3 + 6 ≥ 100, 2·59 − 3 ≤ 115), which read inputs 95...121.
        r = Incremental.reach([100], size: 16, extent: 112, kernel: 7, stride: 2, dilation: 1, pad: 3)
        XCTAssertEqual(r.out, [49]); XCTAssertEqual(r.size, 11); XCTAssertEqual(r.read, [95]); XCTAssertEqual(r.readSize, 27)
        // 1×1 stride 2: a change at odd position 5 alone reaches no output; one output is recomputed.
        r = Incremental.reach([5], size: 1, extent: 5, kernel: 1, stride: 2, dilation: 1, pad: 0)
        XCTAssertEqual(r.size, 1)
    }
}
