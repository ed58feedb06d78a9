import Foundation
import TestSupport
import XCTest
@testable import Engine
@testable import Tensors

/// Load-time folding and fusion change nothing but speed: outputs, taps and gradients agree
/// with the graph as written.
final class OptimizerTests: XCTestCase {
    func testDemoModelIsFoldedAndAgrees() throws {
        let model = try Model(path: Support.repo("models/demo.onnx"))
        let ops = model.optimizedGraph.nodes.map(\.opType)
        XCTAssertFalse(ops.contains("BatchNormalization"))
        XCTAssertEqual(ops.filter { $0 == "Relu" }.count, 1, "only the Relu after the residual Add stays separate")
        XCTAssertEqual(model.graph.nodes.count, 21)
        XCTAssertEqual(model.optimizedGraph.nodes.count, 12)

        let x = try NPY.read(Support.fixture("demo/x.npy"))
        let fast = try model.run([model.inputName: x])
        let reference = try Model(path: Support.repo("models/demo.onnx"), optimize: false).run([model.inputName: x])
        XCTAssertLessThan(fast.outputs[0].maxAbsDifference(reference.outputs[0]), 1e-4)

        // Gradients through fused conv+BN+ReLU equal those of the unfused graph. Rounding differs
        // at the 1e-6 level, which can flip a max-pool winner between two nearly equal values or a
        // ReLU at zero; such flips move single pixels, so compare in the L2 norm.
        let seed = Tensor(shape: [2, 2], data: [0, 1, 0, 1])
        let g1 = try model.backward(fast, seeds: ["logits": seed], wrt: ["input"])["input"]!
        let g2 = try model.backward(reference, seeds: ["logits": seed], wrt: ["input"])["input"]!
        var diff = 0.0, norm = 0.0
        for i in 0..<g1.count { diff += Double((g1.data[i] - g2.data[i]) * (g1.data[i] - g2.data[i])); norm += Double(g2.data[i] * g2.data[i]) }
        print("optimized vs original gradient: relative L2 \((diff / norm).squareRoot()), max \(FiniteDifference.relativeError(g1, g2))")
        XCTAssertLessThan((diff / norm).squareRoot(), 1e-3)
    }

    /// `forward` runs large batches in chunks; the logits equal one pass over the whole batch.
    func testForwardInChunksEqualsOnePass() throws {
        let model = try Model(path: Support.repo("models/demo.onnx"))
        var rng = SeededRandom(seed: 41)
        let x = rng.tensor([10, 3, 64, 64], -2, 2)
        let whole = try model.run([model.inputName: x], keepAll: false).outputs[0]
        for chunk in [3, 4, 10] {
            let chunked = try Model(path: model.path, kernels: .best.with { $0.chunk = chunk })
            let y = try chunked.forward(x)
            XCTAssertEqual(y.shape, [10, 2])
            XCTAssertLessThan(y.maxAbsDifference(whole), 1e-4, "chunks of \(chunk)")
        }
    }

    /// With two threads the chunks run side by side, each single-threaded inside; every image's
    /// logits are bit for bit those of the same chunks run one after the other, and they come
    /// back in the batch's order.
    func testChunksOnTwoThreadsEqualChunksInTurn() throws {
        var rng = SeededRandom(seed: 42)
        let x = rng.tensor([7, 3, 64, 64], -2, 2)
        for chunk in [1, 2, 4] {
            let model = try Model(path: Support.repo("models/demo.onnx"), kernels: .best.with { $0.chunk = chunk })
            let inTurn = try withThreads(1) { try model.forward(x) }
            let sideBySide = try withThreads(2) { try model.forward(x) }
            XCTAssertEqual(sideBySide.shape, [7, 2])
            XCTAssertEqual(sideBySide.data, inTurn.data, "chunks of \(chunk)")
        }
        // A wrong input is refused before it is split: the error names the batch as given.
        let model = try Model(path: Support.repo("models/demo.onnx"), kernels: .best.with { $0.chunk = 1 })
        XCTAssertThrowsError(try model.forward(rng.tensor([4, 2, 64, 64], -1, 1))) { error in
            XCTAssertTrue("\(error)".contains("got [4, 2, 64, 64]"), "\(error)")
        }
    }

    /// Balanced chunks, an even number of them; one chunk for one image.
    func testChunkSizes() {
        XCTAssertEqual(Model.chunkSizes(images: 16, perChunk: 4), [4, 4, 4, 4])
        XCTAssertEqual(Model.chunkSizes(images: 9, perChunk: 4), [2, 2, 2, 3])
        XCTAssertEqual(Model.chunkSizes(images: 12, perChunk: 4), [3, 3, 3, 3])
        XCTAssertEqual(Model.chunkSizes(images: 3, perChunk: 4), [1, 2])
        XCTAssertEqual(Model.chunkSizes(images: 16, perChunk: 15), [8, 8])
        XCTAssertEqual(Model.chunkSizes(images: 5, perChunk: 1), [1, 1, 1, 1, 1])
        XCTAssertEqual(Model.chunkSizes(images: 1, perChunk: 4), [1])
        XCTAssertEqual(Model.chunkSizes(images: 0, perChunk: 4), [0])
    }

    /// The chunk length follows the weight bytes over one image's activation bytes, which the
    /// first inference pass at a shape records: the sum of every node output it computes. The
    /// weights count as the kernels read them: Winograd-shaped convolutions four times over on
    /// the paths that run Winograd.
    func testImagesPerChunkFollowsWeightsOverActivations() throws {
        let model = try Model(path: Support.repo("models/demo.onnx"))
        XCTAssertNil(model.kernels.chunk)
        var rng = SeededRandom(seed: 43)
        let x = rng.tensor([8, 3, 64, 64], -1, 1)
        XCTAssertNil(model.activationFloats.value([3, 64, 64]))
        // The first batched call measures one image first.
        let first = try model.forward(x)
        XCTAssertNotNil(model.activationFloats.value([3, 64, 64]))
        XCTAssertEqual(try model.forward(x).data, first.data, "the same split on every call")
        // The output of every node an inference pass ran (a fused residual convolution is one).
        let clock = NodeClock()
        _ = try model.run([model.inputName: x.item(0)], keepAll: false, clock: clock)
        XCTAssertFalse(model.residualFusions.isEmpty)
        let floats = clock.slowestFirst.reduce(0) { $0 + $1.shape.reduce(1, *) }
        XCTAssertEqual(model.activationFloats.value([3, 64, 64]), floats)
        // The demo model's 3×3 stride-1 convolutions of 16 → 32, 32 → 32 (two) and 32 → 64
        // channels (its 3-channel stem does not run by Winograd), as F(4×4, 3×3) weights.
        XCTAssertEqual(model.winogradExtraBytes, 3 * 4 * 9 * (16 * 32 + 2 * 32 * 32 + 32 * 64))
        func ratio(_ bytes: Int) -> Int { max(1, Int((Double(bytes) / Double(4 * floats)).rounded())) }
        let expected = ratio(model.parameterBytes + (model.kernels.level >= 1 ? model.winogradExtraBytes : 0))
        XCTAssertEqual(try model.imagesPerChunk(for: x), expected)
        XCTAssertNotEqual(expected, 4, "the demo model's ratio differs from the default, so the split would change")
        for kernels in [KernelOptions.best.with { $0.winograd = false }, KernelOptions(path: .openblas)] {
            let plain = try Model(path: model.path, kernels: kernels)
            _ = try plain.forward(x)
            XCTAssertEqual(try plain.imagesPerChunk(for: x), ratio(plain.parameterBytes), "\(kernels)")
        }
        XCTAssertEqual(try Model(path: model.path, kernels: .best.with { $0.chunk = 3 }).imagesPerChunk(for: x), 3)
    }

    /// The convolutions `winogradExtraBytes` counts: those Winograd may run (3×3, stride and
    /// dilation 1, one group, at least 16 input channels), three times their weight bytes.
    func testWinogradExtraBytesCountWinogradShapedConvolutions() throws {
        let model = try ModelBuilder.model([
            ("Conv", ["x", "w1"], "a", [("pads", [1, 1, 1, 1])]),     // 16 → 16: counted
            ("Conv", ["a", "w2"], "b", [("strides", [2, 2])]),        // stride 2
            ("Conv", ["b", "w3"], "c", [("group", [2])]),             // two groups
            ("Conv", ["c", "w4"], "d", [("dilations", [2, 2])]),      // dilation 2
            ("Conv", ["d", "w5"], "e", []),                           // 1×1, to 8 channels
            ("Conv", ["e", "w6"], "f", [("pads", [1, 1, 1, 1])]),     // 8 input channels
            ("Conv", ["f", "w7"], "g", [("pads", [1, 1, 1, 1])]),     // 16 → 24: counted
        ], weights: ["w1": [16, 16, 3, 3], "w2": [16, 16, 3, 3], "w3": [16, 8, 3, 3], "w4": [16, 16, 3, 3],
                     "w5": [8, 16, 1, 1], "w6": [16, 8, 3, 3], "w7": [24, 16, 3, 3]], seed: 3)
        XCTAssertEqual(model.winogradExtraBytes, 3 * 4 * 9 * (16 * 16 + 24 * 16))
    }

    func testTapOnAFoldedTensorRunsTheOriginalGraph() throws {
        let model = try Model(path: Support.repo("models/demo.onnx"))
        let folded = "/block3/bn/BatchNormalization_output_0"
        XCTAssertFalse(model.optimizedGraph.tensorNames.contains(folded))
        let x = try NPY.read(Support.fixture("demo/x_slide_000.npy"))
        let pass = try model.run([model.inputName: x], taps: [folded])
        XCTAssertNotNil(pass.values[folded])
        let grad = try model.backward(pass, seeds: ["logits": Tensor(shape: [1, 2], data: [0, 1])], wrt: [folded])[folded]!
        XCTAssertEqual(grad.shape, [1, 64, 16, 16])
    }

    /// Inference passes run Conv → Add (→ Relu) as one convolution that adds the residual in its
    /// store; results equal the node-by-node pass up to rounding, on every kernel path (Winograd,
    /// 1×1 in place, implicit GEMM), with the residual first or second, handed over or copied
    /// (read by the Conv itself or between it and the Add), and not where the shapes need broadcasting or
    /// where a tap asks for the sum.
    func testResidualFusionMatchesNodeByNode() throws {
        var g = SyntheticGraph(seed: 12)
        try g.conv("x", "c0", 16, 16, k: 3, weights: 0.2)
        try g.add("Relu", ["c0"], "r0")                     // fused into c0 at load time
        try g.conv("r0", "c1", 16, 16, k: 3, weights: 0.2)  // Winograd (16 channels, 25 tiles)
        try g.add("Add", ["c1", "r0"], "a1")
        try g.add("Relu", ["a1"], "y1")                     // c1 + Add + Relu
        try g.conv("y1", "b2", 16, 16, k: 3, weights: 0.2)
        try g.conv("b2", "c2", 16, 16, k: 1, weights: 0.2)  // 1×1 read in place
        try g.add("Add", ["y1", "c2"], "a2")                // residual first, no ReLU, handed over
        try g.conv("a2", "c3", 16, 16, k: 5, weights: 0.2)  // implicit GEMM
        try g.add("Neg", ["a2"], "n3")                      // reads the residual after the Conv
        try g.add("Add", ["c3", "a2"], "a3")                // fused, residual copied
        try g.add("Add", ["a3", "n3"], "a4")
        try g.add("GlobalAveragePool", ["a4"], "g4")
        try g.conv("a4", "c5", 16, 16, k: 1, weights: 0.2)
        try g.add("Add", ["c5", "g4"], "a5")                // broadcast: not fused
        try g.add("Relu", ["a5"], "y5")
        try g.add("GlobalAveragePool", ["y5"], "g5")
        try g.add("Flatten", ["g5"], "y")
        let model = try g.model(input: [nil, 16, 9, 10], outputs: ["y"])
        let byConv = Dictionary(uniqueKeysWithValues: model.residualFusions.map { (model.optimizedGraph.nodes[$0.key].name, $0.value) })
        XCTAssertEqual(Set(byConv.keys), ["c1", "c2", "c3", "c5"])
        XCTAssertEqual(byConv["c1"]?.output, "y1")
        XCTAssertEqual(byConv["c2"]?.output, "a2")
        XCTAssertEqual(byConv["c2"]?.residualIdleUntilAdd, true)
        XCTAssertEqual(byConv["c1"]?.residualIdleUntilAdd, false, "c1 reads its own residual")
        XCTAssertEqual(byConv["c3"]?.residualIdleUntilAdd, false)

        let x = g.rng.tensor([2, 16, 9, 10])
        let full = try model.run(["x": x])               // node by node (keeps every tensor)
        let lean = try model.run(["x": x], keepAll: false)
        let scale = full.outputs[0].data.map(abs).max()!
        XCTAssertLessThan(lean.outputs[0].maxAbsDifference(full.outputs[0]), 1e-5 * max(1, scale))
        // A tap on a sum the fusion would skip: the pass computes it node by node.
        let tapped = try model.run(["x": x], taps: ["a1", "a3"], keepAll: false)
        for name in ["a1", "a3"] {
            XCTAssertEqual(tapped.values[name]?.shape, full.values[name]!.shape)
            XCTAssertLessThan(tapped.values[name]!.maxAbsDifference(full.values[name]!), 1e-5)
        }
    }

    /// Inference passes run a 1×1 expansion and the depthwise Conv that alone reads it as one
    /// (`PointwiseDepthwiseFusion`): the bits of the two nodes run one after the other, at stride
    /// 1 and 2; not where the expansion has another reader or the depthwise Conv a fused
    /// residual; node by node where a tap names the tensor between them.
    func testPointwiseDepthwiseFusionGivesTheSameBits() throws {
        var g = SyntheticGraph(seed: 13)
        let relu6: [String: Attributes.Value] = ["min": .float(0), "max": .float(6)]
        try g.conv("x", "e0", 8, 48)
        try g.add("Clip", ["e0"], "e0r", relu6)             // fused into e0 at load time
        try g.conv("e0r", "d0", 48, 48, k: 3, depthwise: true) // e0 + d0: fused
        try g.add("Clip", ["d0"], "d0r", relu6)
        try g.conv("d0r", "p0", 48, 8)
        try g.add("Add", ["p0", "x"], "a0")
        try g.conv("a0", "e1", 8, 48)
        try g.conv("e1", "d1", 48, 48, k: 3, stride: 2, depthwise: true)
        try g.add("GlobalAveragePool", ["e1"], "g1")        // a second reader of e1: not fused
        try g.conv("d1", "q2", 48, 16)
        try g.conv("d1", "e2", 48, 16)
        try g.conv("e2", "d2", 16, 16, k: 3, depthwise: true)
        try g.add("Add", ["d2", "q2"], "a2")                // d2 takes the residual: e2 not fused
        try g.conv("a2", "e3", 16, 32)
        try g.add("Relu", ["e3"], "e3r")
        try g.conv("e3r", "d3", 32, 32, k: 5, stride: 2, depthwise: true) // e3 + d3: fused, stride 2
        try g.add("GlobalAveragePool", ["d3"], "g3")
        try g.add("Flatten", ["g3"], "y")
        try g.add("Flatten", ["g1"], "z")
        let model = try g.model(input: [nil, 8, 13, 12], outputs: ["y", "z"])
        let pairs = Dictionary(uniqueKeysWithValues: model.pointwiseDepthwiseFusions.map {
            (model.optimizedGraph.nodes[$0.key].name, model.optimizedGraph.nodes[$0.value.depthwise].name)
        })
        XCTAssertEqual(pairs, ["e0": "d0", "e3": "d3"])
        XCTAssertEqual(model.pointwiseDepthwiseFusions.values.map(\.intermediates).sorted { $0[0] < $1[0] }, [["e0r"], ["e3r"]])

        let x = g.rng.tensor([2, 8, 13, 12])
        let unfused = try g.model(input: [nil, 8, 13, 12], outputs: ["y", "z"], kernels: .best.with { $0.fusePointwiseDepthwise = false })
        let nodeByNode = try unfused.run(["x": x], keepAll: false)
        let clock = NodeClock()
        let fused = try model.run(["x": x], keepAll: false, clock: clock)
        for i in 0..<2 { XCTAssertEqual(fused.outputs[i].data, nodeByNode.outputs[i].data, "output \(i)") }
        XCTAssertEqual(Set(clock.slowestFirst.map(\.name)).intersection(["e0 + d0", "e3 + d3", "d0", "d3"]), ["e0 + d0", "e3 + d3"])
        let full = try model.run(["x": x])
        XCTAssertLessThan(fused.outputs[0].maxAbsDifference(full.outputs[0]), 1e-5)
        // A tap on the expansion: that pair runs node by node and the tap holds the full pass's value.
        let tapped = try model.run(["x": x], taps: ["e0r"], keepAll: false)
        XCTAssertEqual(tapped.values["e0r"]?.data, full.values["e0r"]!.data)
        XCTAssertEqual(tapped.outputs[0].data, fused.outputs[0].data)
    }

    /// Inference passes run Conv → Sigmoid → Mul (SiLU, either operand order) as one convolution
    /// with SiLU in its store, also inside an expansion + depthwise pair (EfficientNet's blocks):
    /// the bits of the nodes one by one; not where the Conv's output has a third reader; node by
    /// node where a tap names the Conv's output or the sigmoid. Gradients still run node by node.
    func testSiLUFusionGivesTheSameBits() throws {
        var g = SyntheticGraph(seed: 14)
        try g.conv("x", "c0", 3, 16, k: 3, stride: 2, weights: 0.4, bias: 0.2)       // stem: fused
        try g.silu("c0", "y0")
        try g.conv("y0", "e1", 16, 64, weights: 0.4, bias: 0.2)                      // expansion, SiLU, depthwise, SiLU: one pair
        try g.silu("e1", "y1", sigmoidFirst: true)
        try g.conv("y1", "d1", 64, 64, k: 3, depthwise: true, weights: 0.4, bias: 0.2)
        try g.silu("d1", "y2")
        try g.conv("y2", "p1", 64, 16, weights: 0.4, bias: 0.2)
        try g.add("Sigmoid", ["p1"], "p1.s")                // a third reader of p1: not fused
        try g.add("Mul", ["p1", "p1.s"], "y3")
        try g.add("Add", ["y3", "p1"], "a3")
        try g.add("GlobalAveragePool", ["a3"], "g")
        try g.add("Flatten", ["g"], "y")
        let model = try g.model(input: [nil, 3, 15, 14], outputs: ["y"])
        let names = { (i: Int) in model.optimizedGraph.nodes[i].name }
        XCTAssertEqual(Set(model.siluFusions.keys.map(names)), ["c0", "e1", "d1"])
        XCTAssertEqual(model.siluFusions.values.map(\.output).sorted(), ["y0", "y1", "y2"])
        let pair = try XCTUnwrap(model.pointwiseDepthwiseFusions.first { names($0.key) == "e1" }?.value)
        XCTAssertEqual(names(pair.depthwise), "d1")
        XCTAssertEqual(pair.output, "y2")
        XCTAssertEqual(Set(pair.intermediates), ["y1", "e1", "e1.s", "d1", "d1.s"])
        XCTAssertEqual(model.pointwiseDepthwiseFusions.count, 1)

        let x = g.rng.tensor([2, 3, 15, 14], -2, 2)
        let full = try model.run(["x": x])                // node by node
        let lean = try model.run(["x": x], keepAll: false)
        XCTAssertEqual(lean.outputs[0].data, full.outputs[0].data)
        for tap in ["c0", "e1.s", "d1"] {
            let tapped = try model.run(["x": x], taps: [tap], keepAll: false)
            XCTAssertEqual(tapped.values[tap]?.data, full.values[tap]!.data, tap)
            XCTAssertEqual(tapped.outputs[0].data, full.outputs[0].data, tap)
        }
        let grad = try model.backward(full, seeds: ["y": Tensor(shape: [2, 16], data: Array(repeating: 1, count: 32))], wrt: ["x"])["x"]!
        XCTAssertEqual(grad.shape, x.shape)
        XCTAssertGreaterThan(grad.data.map(abs).max()!, 0)
    }

    /// Inference passes run BatchNormalization → Relu (DenseNet's pre-activation) in one pass:
    /// the bits of the two nodes; not where the normalized tensor has another reader or is tapped.
    func testBatchNormReluFusionGivesTheSameBits() throws {
        var g = SyntheticGraph(seed: 15)
        try g.batchNorm("x", "n0", 6)
        try g.add("Relu", ["n0"], "r0")                     // fused
        try g.batchNorm("r0", "n1", 6)
        try g.add("Relu", ["n1"], "r1")                     // not fused: n1 has a second reader
        try g.add("Add", ["r1", "n1"], "a1")
        try g.add("Concat", ["a1", "r0"], "c1", ["axis": .int(1)])
        try g.batchNorm("c1", "n2", 12)
        try g.add("Relu", ["n2"], "y")                      // fused
        let model = try g.model(input: [nil, 6, 9, 11], outputs: ["y"])
        XCTAssertEqual(Set(model.batchNormReluFusions.values.map(\.output)), ["r0", "y"])
        let x = g.rng.tensor([2, 6, 9, 11], -2, 2)
        let full = try model.run(["x": x])
        XCTAssertEqual(try model.run(["x": x], keepAll: false).outputs[0].data, full.outputs[0].data)
        let tapped = try model.run(["x": x], taps: ["n0"], keepAll: false)
        XCTAssertEqual(tapped.values["n0"]?.data, full.values["n0"]!.data)
        XCTAssertEqual(tapped.outputs[0].data, full.outputs[0].data)
    }

    /// Inference passes after the first at an input shape replay the plan it recorded
    /// (`InferencePlan`): the same bits as passes by name, through every kind of fused step, a
    /// node of two outputs and an omitted input; one plan per input shape; an error in a
    /// replayed pass names the node as one by name does.
    func testInferencePlanReplaysTheSameBits() throws {
        var g = SyntheticGraph(seed: 16)
        try g.conv("x", "c0", 8, 8, k: 3)
        try g.add("Relu", ["c0"], "r0")
        try g.conv("r0", "c1", 8, 8, k: 3)
        try g.add("Relu", ["c1"], "c1r")
        try g.conv("c1r", "c2", 8, 8, k: 3)
        try g.add("Add", ["c2", "r0"], "a2")                // residual fused into c2, r0's buffer handed over
        try g.conv("a2", "e3", 8, 32)
        try g.conv("e3", "d3", 32, 32, k: 3, stride: 2, depthwise: true) // expansion + depthwise pair
        try g.conv("d3", "p3", 32, 8)
        try g.silu("p3", "y3")                              // SiLU in p3's store
        try g.batchNorm("y3", "n4", 8)
        try g.add("Relu", ["n4"], "r4")                     // BatchNormalization + Relu
        var split = Attributes(inputCount: 1, outputCount: 2)
        split.values = ["axis": .int(1)]
        g.nodes.append(Node(name: "sp", opType: "Split", inputs: ["r4"], outputs: ["s0", "s1"],
                            op: try OperatorRegistry.table["Split"]!(split)))
        g.initializers["hi"] = Tensor(shape: [], data: [0.5])
        try g.add("Clip", ["s0", "", "hi"], "k0")            // an omitted input
        try g.add("GlobalAveragePool", ["k0"], "g0")
        try g.add("Flatten", ["g0"], "y")
        try g.add("GlobalAveragePool", ["s1"], "g1")
        try g.add("Flatten", ["g1"], "z")
        let model = try g.model(input: [nil, 8, 13, 12], outputs: ["y", "z"])
        let planless = try g.model(input: [nil, 8, 13, 12], outputs: ["y", "z"], kernels: .best.with { $0.inferencePlans = false })

        for n in [2, 3] {
            let x = g.rng.tensor([n, 8, 13, 12], -2, 2)
            let byName = try planless.run(["x": x], keepAll: false)
            for pass in 0..<3 {                             // the first records the plan, the others replay it
                let p = try model.run(["x": x], keepAll: false)
                for i in 0..<2 { XCTAssertEqual(p.outputs[i].data, byName.outputs[i].data, "batch \(n), pass \(pass), output \(i)") }
                if pass > 0 { XCTAssertEqual(Set(p.values.keys), ["y", "z"], "a replayed pass keeps the outputs only") }
            }
        }
        XCTAssertEqual(model.plans.count, 2, "one plan per input shape")
        XCTAssertEqual(planless.plans.count, 0)
        let plan = try XCTUnwrap(model.plans.plan(InferencePlan.Key(shapes: [[2, 8, 13, 12]])))
        let fused = plan.steps.compactMap { step -> String? in
            guard case .fused(let f) = step.work else { return nil }
            switch f.step {
            case .residual: return step.handsOver ? "residual, handed over" : "residual"
            case .pair: return "pair"
            case .silu: return "silu"
            case .batchNormRelu: return "batchnorm+relu"
            }
        }
        XCTAssertEqual(fused, ["residual, handed over", "pair", "silu", "batchnorm+relu"])
        XCTAssertEqual(plan.steps.count, model.optimizedGraph.nodes.count - 5, "the Add, depthwise Conv, Sigmoid, Mul and Relu run inside fused steps")

        // A residual of another shape than the plan's (only a graph input's values could cause
        // that): the replay gives up and the pass runs by name, with the same result.
        let key = InferencePlan.Key(shapes: [[2, 8, 13, 12]])
        let trace: [InferencePlan.Trace] = plan.steps.map { step in
            guard case .fused(let f) = step.work else { return (step.node, nil, nil) }
            return (step.node, f.step, step.residualShape.map { _ in [2, 8, 1, 1] })
        }
        let skewed = InferencePlan(graph: model.optimizedGraph, trace: trace, frees: model.optimizedLastUse, keep: ["y", "z"])
        let x2 = g.rng.tensor([2, 8, 13, 12], -2, 2)
        XCTAssertNil(try skewed.run([x2], kernels: model.kernels, failure: { error, _, _ in error }))
        model.plans.store(skewed, for: key)
        let expected = try planless.run(["x": x2], keepAll: false)
        XCTAssertEqual(try model.run(["x": x2], keepAll: false).outputs.map(\.data), expected.outputs.map(\.data))
        XCTAssertNotNil(try model.plans.plan(key)?.run([x2], kernels: model.kernels, failure: { error, _, _ in error }),
                        "the pass by name made a new plan")

        // A tap or a pass keeping every tensor runs by name and does not make a plan.
        let x = g.rng.tensor([2, 8, 13, 12], -2, 2)
        _ = try model.run(["x": x], taps: ["d3"], keepAll: false)
        _ = try model.run(["x": x])
        XCTAssertEqual(model.plans.count, 2)

        // A kernel that fails in a replayed pass: the error names the model and the node.
        if model.kernels.ownKernels {
            Conv2D.failScratchForTests(true)
            defer { Conv2D.failScratchForTests(false) }
            XCTAssertThrowsError(try model.run(["x": x], keepAll: false)) { error in
                XCTAssertTrue("\(error)".hasPrefix("synthetic: node 'c2' (Conv): "), "\(error)")
                XCTAssertTrue("\(error)".contains("scratch memory"), "\(error)")
            }
        }
    }

    /// In a pass a gradient is taken through, a 3 × 3 convolution some MaxPool depends on keeps
    /// Winograd's F(2×2, 3×3) (its ties must break as in the reference libraries); one no
    /// selecting operator depends on takes the tile with fewer products, F(4×4, 3×3) here, as
    /// in an inference pass. Both give the inference pass's logits within rounding.
    func testSelectionFreeConvolutionsTakeTheInferenceTile() throws {
        var g = SyntheticGraph(seed: 17)
        try g.conv("x", "c1", 16, 16, k: 3)
        try g.add("MaxPool", ["c1"], "p1", ["kernel_shape": .ints([2, 2]), "strides": .ints([2, 2])])
        try g.conv("p1", "c2", 16, 16, k: 3)
        try g.add("GlobalAveragePool", ["c2"], "gap")
        try g.add("Flatten", ["gap"], "y")
        let model = try g.model(input: [nil, 16, 64, 64], outputs: ["y"])
        let nodes = model.optimizedGraph.nodes
        let index = { (name: String) in nodes.firstIndex { $0.name == name }! }
        XCTAssertEqual(model.optimizedSelectionFree, Set([index("c2"), index("gap"), index("y")]))
        let x = g.rng.tensor([1, 16, 64, 64])
        let gradientPass = try model.run(["x": x])
        let inference = try model.run(["x": x], keepAll: false)
        XCTAssertLessThan(gradientPass.outputs[0].maxAbsDifference(inference.outputs[0]), 1e-5)
        guard model.kernels.ownKernels else { return }
        let forms = { (name: String) in (nodes[index(name)].op as! ConvOp).packedWeights.forms }
        XCTAssertEqual(forms("c1"), [.winograd, .winograd4], "F(2×2) in the gradient pass, F(4×4) in the inference pass")
        XCTAssertEqual(forms("c2"), [.winograd4], "F(4×4) in both passes")
    }

    func testInferencePassFreesIntermediates() throws {
        let model = try Model(path: Support.repo("models/demo.onnx"))
        let x = try NPY.read(Support.fixture("demo/x_slide_000.npy"))
        let lean = try model.run([model.inputName: x], keepAll: false)
        let full = try model.run([model.inputName: x])
        // (The lean pass fuses the residual Add into its convolution: equal up to rounding.)
        XCTAssertLessThan(lean.outputs[0].maxAbsDifference(full.outputs[0]), 1e-5)
        XCTAssertLessThan(lean.values.count - model.optimizedGraph.initializers.count, 3)
    }
}

/// Gemm of a batch runs as a 1×1 convolution with the weights packed once; it must equal the
/// plain GEMM for every transpose, alpha, beta and bias shape, and across repeated calls.
final class GemmFastPathTests: XCTestCase {
    func testBatchedGemmMatchesReference() throws {
        var rng = SeededRandom(seed: 21)
        for (transB, alpha, beta, cShape) in [(true, Float(1), Float(1), [7]), (false, 0.5, 2, [5, 7]), (true, 2, 0, [1, 7]), (false, 1, 1, [1])] {
            var attributes = Attributes(inputCount: 3)
            attributes.values = ["transB": .int(transB ? 1 : 0), "alpha": .float(alpha), "beta": .float(beta)]
            let op = try GemmOp(attributes)
            let a = rng.tensor([5, 300]), b = rng.tensor(transB ? [7, 300] : [300, 7]), c = rng.tensor(cShape)
            let expected = try Gemm.forward(a: a, b: b, c: c, transA: false, transB: transB, alpha: alpha, beta: beta,
                                            kernels: .reference)
            for _ in 0..<2 {
                let y = try op.forward([a, b, c], Pass(kernels: .best))[0]
                XCTAssertEqual(y.shape, [5, 7])
                XCTAssertLessThan(y.maxAbsDifference(expected), 1e-4, "transB \(transB), alpha \(alpha), beta \(beta), C \(cShape)")
            }
        }
    }
}

/// A graph built node by node for the fusion tests: each node named after its output, weights
/// and biases seeded random initializers.
struct SyntheticGraph {
    var rng: SeededRandom
    var initializers: [String: Tensor] = [:]
    var nodes: [Node] = []

    init(seed: UInt64) { rng = SeededRandom(seed: seed) }

    mutating func add(_ op: String, _ inputs: [String], _ output: String, _ values: [String: Attributes.Value] = [:]) throws {
        var a = Attributes(inputCount: inputs.count)
        a.values = values
        nodes.append(Node(name: output, opType: op, inputs: inputs, outputs: [output], op: try OperatorRegistry.table[op]!(a)))
    }

    /// A k × k Conv of c → m channels (depthwise: one group per channel) with "same" padding;
    /// weights in ±`weights`, bias in ±`bias`.
    mutating func conv(_ input: String, _ output: String, _ c: Int, _ m: Int, k: Int = 1, stride: Int = 1,
                       depthwise: Bool = false, weights: Float = 0.3, bias: Float = 0.1) throws {
        initializers["\(output).w"] = rng.tensor([m, depthwise ? 1 : c, k, k], -weights, weights)
        initializers["\(output).b"] = rng.tensor([m], -bias, bias)
        try add("Conv", [input, "\(output).w", "\(output).b"], output,
                ["pads": .ints(Array(repeating: k / 2, count: 4)), "strides": .ints([stride, stride]),
                 "group": .int(depthwise ? m : 1)])
    }

    /// SiLU as exporters write it: `t.s = Sigmoid(t)`, then `y = Mul(t, t.s)` (or the sigmoid first).
    mutating func silu(_ t: String, _ y: String, sigmoidFirst: Bool = false) throws {
        try add("Sigmoid", [t], "\(t).s")
        try add("Mul", sigmoidFirst ? ["\(t).s", t] : [t, "\(t).s"], y)
    }

    /// Inference BatchNormalization over c channels with seeded statistics.
    mutating func batchNorm(_ input: String, _ output: String, _ c: Int) throws {
        initializers["\(output).scale"] = rng.tensor([c], 0.5, 1.5)
        initializers["\(output).bias"] = rng.tensor([c], -0.5, 0.5)
        initializers["\(output).mean"] = rng.tensor([c], -0.3, 0.3)
        initializers["\(output).var"] = rng.tensor([c], 0.5, 2)
        try add("BatchNormalization", [input, "\(output).scale", "\(output).bias", "\(output).mean", "\(output).var"], output)
    }

    /// The model of the nodes so far, with one input "x" of `shape`.
    func model(input shape: [Int?], outputs: [String], kernels: KernelOptions = .best) throws -> Model {
        try Model(path: "synthetic", graph: Graph(inputs: [GraphInput(name: "x", shape: shape)], outputs: outputs,
                                                  initializers: initializers, nodes: nodes), kernels: kernels)
    }
}
