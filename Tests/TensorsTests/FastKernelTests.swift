import CKernels
import Dispatch
import TestSupport
import XCTest
@testable import Tensors

/// The fast convolution (implicit GEMM with packed weights, direct depthwise) and the fast 2-D
/// pooling against their reference kernels, on shapes that reach every edge: several depth
/// blocks (k > 256), several column blocks (more than 384 output pixels), partial tiles, batch,
/// groups, depthwise with a channel multiplier, fused activations, both kernel levels, one and
/// two threads.
final class FastKernelTests: XCTestCase {
    struct Case {
        let n, c, m, h, w: Int
        let g: Conv2DGeometry
    }

    let cases: [Case] = [
        Case(n: 1, c: 64, m: 40, h: 23, w: 21, g: Conv2DGeometry(kernel: (3, 3), pads: (1, 1, 1, 1))), // k = 576, 483 px
        Case(n: 3, c: 3, m: 17, h: 30, w: 29, g: Conv2DGeometry(kernel: (7, 7), strides: (2, 2), pads: (3, 3, 3, 3))),
        Case(n: 2, c: 12, m: 9, h: 11, w: 13, g: Conv2DGeometry(kernel: (3, 3), strides: (2, 3), pads: (0, 2, 1, 0), dilations: (2, 1))),
        Case(n: 2, c: 33, m: 70, h: 7, w: 7, g: Conv2DGeometry(kernel: (1, 1))),
        Case(n: 1, c: 16, m: 24, h: 9, w: 40, g: Conv2DGeometry(kernel: (1, 1), strides: (2, 2))),
        // 1×1 at stride 1 reads its input in place: two depth blocks, two column blocks, groups,
        // a plane shorter than one panel (its columns must not read past the tensor).
        Case(n: 1, c: 300, m: 20, h: 21, w: 20, g: Conv2DGeometry(kernel: (1, 1))),
        Case(n: 2, c: 12, m: 18, h: 5, w: 7, g: Conv2DGeometry(kernel: (1, 1), group: 3)),
        Case(n: 1, c: 5, m: 3, h: 3, w: 3, g: Conv2DGeometry(kernel: (1, 1))),
        Case(n: 2, c: 8, m: 12, h: 10, w: 9, g: Conv2DGeometry(kernel: (3, 3), pads: (1, 1, 1, 1), group: 4)),
        Case(n: 2, c: 10, m: 10, h: 12, w: 11, g: Conv2DGeometry(kernel: (3, 3), strides: (2, 2), pads: (1, 1, 1, 1), group: 10)),
        Case(n: 1, c: 6, m: 12, h: 9, w: 10, g: Conv2DGeometry(kernel: (5, 5), pads: (2, 2, 2, 2), dilations: (2, 1), group: 6)),
        Case(n: 1, c: 4, m: 5, h: 3, w: 3, g: Conv2DGeometry(kernel: (3, 3), pads: (4, 4, 0, 0))), // windows all in padding
        // Stride 2 with dilated columns, odd width and asymmetric pads (the packing's per-panel
        // lane masks for each kernel column).
        Case(n: 2, c: 5, m: 11, h: 17, w: 23, g: Conv2DGeometry(kernel: (3, 3), strides: (2, 2), pads: (1, 2, 0, 1), dilations: (1, 2))),
        // Output rows of 35 at stride 2: the AVX2 packing copies whole 16-column runs with
        // vector loads (the column after the run inside the row) and falls back at the edges.
        Case(n: 1, c: 4, m: 8, h: 20, w: 70, g: Conv2DGeometry(kernel: (3, 3), strides: (2, 2), pads: (1, 1, 1, 1))),
        Case(n: 1, c: 4, m: 8, h: 9, w: 64, g: Conv2DGeometry(kernel: (3, 3), strides: (2, 2), pads: (1, 0, 1, 0))),
        // Kernel columns past the 11 whose lane masks the packing precomputes, at stride 2.
        Case(n: 1, c: 2, m: 9, h: 5, w: 40, g: Conv2DGeometry(kernel: (3, 13), strides: (1, 2), pads: (1, 6, 1, 6))),
        // Depthwise on rows longer than one vector: stride 1, 2 (permute) and 3 (gather), dilated.
        Case(n: 2, c: 5, m: 5, h: 9, w: 45, g: Conv2DGeometry(kernel: (3, 3), pads: (1, 1, 1, 1), group: 5)),
        Case(n: 1, c: 4, m: 4, h: 8, w: 71, g: Conv2DGeometry(kernel: (5, 5), strides: (2, 2), pads: (2, 2, 2, 2), group: 4)),
        Case(n: 1, c: 3, m: 3, h: 10, w: 60, g: Conv2DGeometry(kernel: (3, 3), strides: (1, 3), pads: (0, 3, 2, 1), dilations: (1, 2), group: 3)),
        // The row-blocked 3×3 instances (stride 1 and 2) and the 5×5 stride-1 one: several column
        // blocks, asymmetric pads, pads wider than the window, heights not a multiple of the block.
        Case(n: 1, c: 3, m: 3, h: 13, w: 70, g: Conv2DGeometry(kernel: (3, 3), strides: (2, 2), pads: (0, 1, 1, 0), group: 3)),
        Case(n: 2, c: 4, m: 4, h: 7, w: 7, g: Conv2DGeometry(kernel: (3, 3), pads: (1, 1, 1, 1), group: 4)),
        Case(n: 1, c: 2, m: 2, h: 6, w: 35, g: Conv2DGeometry(kernel: (3, 3), pads: (2, 2, 3, 2), group: 2)),
        Case(n: 1, c: 2, m: 2, h: 6, w: 33, g: Conv2DGeometry(kernel: (5, 5), pads: (2, 2, 2, 2), group: 2)),
        // Planes narrower than one vector and than the window: every tap a masked load.
        Case(n: 1, c: 2, m: 2, h: 4, w: 3, g: Conv2DGeometry(kernel: (5, 5), strides: (2, 2), pads: (2, 2, 2, 2), group: 2)),
        Case(n: 1, c: 3, m: 3, h: 5, w: 2, g: Conv2DGeometry(kernel: (3, 3), pads: (1, 1, 1, 1), group: 3)),
        // 3×3 at stride 2 reads 32 columns a block and one more for tap 2 of lane 15: that column
        // in the right padding (w 63: the second block's last output) and in the row (w 64).
        Case(n: 1, c: 2, m: 2, h: 5, w: 63, g: Conv2DGeometry(kernel: (3, 3), strides: (2, 2), pads: (1, 1, 1, 1), group: 2)),
        Case(n: 1, c: 2, m: 2, h: 5, w: 64, g: Conv2DGeometry(kernel: (3, 3), strides: (2, 2), pads: (1, 1, 1, 1), group: 2)),
        // Winograd F(2×2, 3×3) (3×3, stride 1, ≥ 16 channels, ≥ 16 tiles): odd output sizes,
        // asymmetric pads, three images (split by output channels), two depth blocks (c > 256).
        Case(n: 3, c: 20, m: 19, h: 9, w: 8, g: Conv2DGeometry(kernel: (3, 3), pads: (2, 0, 1, 1))),
        Case(n: 1, c: 300, m: 13, h: 11, w: 9, g: Conv2DGeometry(kernel: (3, 3), pads: (1, 1, 1, 1))),
        Case(n: 2, c: 16, m: 40, h: 30, w: 33, g: Conv2DGeometry(kernel: (3, 3))),
        // One 7×7 image (resnet18's layer4 at batch 1): 16 tiles, the fewest that take Winograd.
        Case(n: 1, c: 32, m: 24, h: 7, w: 7, g: Conv2DGeometry(kernel: (3, 3), pads: (1, 1, 1, 1))),
        // Wide planes: many Winograd tile blocks, many GEMM column panels.
        Case(n: 1, c: 16, m: 20, h: 48, w: 46, g: Conv2DGeometry(kernel: (3, 3), pads: (1, 1, 1, 1))),
        Case(n: 1, c: 5, m: 9, h: 30, w: 40, g: Conv2DGeometry(kernel: (5, 5), pads: (2, 2, 2, 2))),
        // 1×1 on small planes with output channels along the vector (depth ≥ 64, ≤ 256 pixels):
        // a partial pixel tile (49 = 6·8 + 1) and a partial channel panel (45 = 32 + 13); one
        // image split across two threads (255 pixels, 100 channels); three images of 15 pixels.
        Case(n: 2, c: 70, m: 45, h: 7, w: 7, g: Conv2DGeometry(kernel: (1, 1))),
        Case(n: 1, c: 64, m: 100, h: 15, w: 17, g: Conv2DGeometry(kernel: (1, 1))),
        Case(n: 3, c: 300, m: 33, h: 5, w: 3, g: Conv2DGeometry(kernel: (1, 1))),
    ]

    /// Largest absolute difference over the largest magnitude (at least 1): float32 sums of
    /// hundreds of products differ between summation orders by a few ulps of their size.
    /// `scale`: the tensor whose magnitude sets the scale (the output before a clipping activation).
    func relativeError(_ y: Tensor, _ expected: Tensor, scale: Tensor? = nil) -> Float {
        y.maxAbsDifference(expected) / max(1, (scale ?? expected).data.map(abs).max() ?? 0)
    }

    /// Every kernel path this CPU runs, fastest first (OpenBLAS included with `openblas`). No
    /// test here skips a path: each runs on every path the CPU has and asserts what the
    /// dispatcher does there (an AVX2 CPU runs exactly the avx2 and openblas iterations that an
    /// AVX-512 one runs; kernels of a path the CPU lacks refuse to run, tested below).
    static func paths(openblas: Bool = true) -> [KernelOptions.Path] {
        let paths = KernelOptions.supportedPaths.reversed().filter { openblas || $0 != .openblas }
        print("kernel paths on \(CPU.summary): \(paths.map(\.rawValue).joined(separator: ", "))")
        return paths
    }

    /// Runs body with the options of `path` (`winogradTile` forcing Winograd's tile; nil: the
    /// per-layer choice) on `threads` threads.
    func withKernels(path: KernelOptions.Path, threads: Int, winogradTile: Int? = nil,
                     _ body: (KernelOptions) throws -> Void) rethrows {
        try withThreads(threads) { try body(KernelOptions(path: path).with { $0.winogradTile = winogradTile }) }
    }

    /// Largest relative error (`relativeError`) allowed against the direct sum: 4e-6 for every
    /// kernel but Winograd's F(4×4, 3×3), whose transforms (entries up to 8 and 1/24) round more:
    /// 1.2e-5 (docs/engine.md, "Accuracy").
    static let bound: Float = 4e-6, boundF4: Float = 1.2e-5

    /// Every kernel against the reference, Winograd with its F(2×2, 3×3) tile (F(4×4, 3×3) has
    /// its own test and bound: `testWinogradTilesMatchReference`).
    func testFastConvolutionMatchesReference() throws {
        var rng = SeededRandom(seed: 11)
        for level in Self.paths() {
            for threads in [1, 2] {
                for (index, t) in cases.enumerated() {
                    let x = rng.tensor([t.n, t.c, t.h, t.w])
                    let wt = rng.tensor([t.m, t.c / t.g.group, t.g.kernel.h, t.g.kernel.w])
                    let b = rng.tensor([t.m])
                    let reference = try Conv2D.referenceForward(x: x, w: wt, b: b, geometry: t.g, kernels: .reference)
                    for activation in [nil, ConvActivation.relu, .clip(-0.5, 0.7), .silu] {
                        var expected = reference
                        activation?.apply(&expected, level: 0)
                        try withKernels(path: level, threads: threads, winogradTile: 2) { kernels in
                            let y = try Conv2D.forward(x: x, w: wt, b: b, geometry: t.g, activation: activation, kernels: kernels)
                            XCTAssertEqual(y.shape, expected.shape)
                            XCTAssertLessThan(relativeError(y, expected, scale: reference), 4e-6,
                                              "case \(index), level \(level), \(threads) threads, \(String(describing: activation))")
                        }
                    }
                    // With a fused residual (y = act(conv + b + r)), no activation and ReLU.
                    let r = rng.tensor(reference.shape)
                    for activation in [nil, ConvActivation.relu] {
                        var expected = Elementwise.add(reference, r)
                        activation?.apply(&expected, level: 0)
                        try withKernels(path: level, threads: threads, winogradTile: 2) { kernels in
                            let y = try Conv2D.forward(x: x, w: wt, b: b, geometry: t.g, activation: activation, residual: r, kernels: kernels)
                            XCTAssertLessThan(relativeError(y, expected, scale: Elementwise.add(reference, r)), 4e-6,
                                              "residual: case \(index), level \(level), \(threads) threads, \(String(describing: activation))")
                        }
                    }
                    // Without bias.
                    try withKernels(path: level, threads: threads, winogradTile: 2) { kernels in
                        let y = try Conv2D.forward(x: x, w: wt, b: nil, geometry: t.g, kernels: kernels)
                        XCTAssertLessThan(relativeError(y, try Conv2D.referenceForward(x: x, w: wt, b: nil, geometry: t.g, kernels: .reference)), 4e-6)
                    }
                }
            }
        }
    }

    /// The input gradient at stride 1 runs as a forward convolution with flipped, transposed
    /// weights; it must equal the reference (GEMM + col2im) one, including grouped, depthwise,
    /// dilated and asymmetrically padded cases, with and without a cache (Winograd with
    /// F(2×2, 3×3); F(4×4, 3×3) in `testWinogradTilesMatchReference`).
    func testFastBackwardMatchesReference() throws {
        var rng = SeededRandom(seed: 14)
        for (path, threads) in Self.paths().flatMap({ p in [1, 2].map { (p, $0) } }) {
            for (index, t) in cases.enumerated() {
                let x = rng.tensor([t.n, t.c, t.h, t.w])
                let wt = rng.tensor([t.m, t.c / t.g.group, t.g.kernel.h, t.g.kernel.w])
                let dy = rng.tensor(try Conv2D.referenceForward(x: x, w: wt, b: nil, geometry: t.g, kernels: .reference).shape)
                let expected = Conv2D.referenceBackwardInput(dy: dy, w: wt, inputShape: x.shape, geometry: t.g, kernels: .reference)
                let cache = PackedWeightsCache()
                withKernels(path: path, threads: threads, winogradTile: 2) { kernels in
                    for c in [nil, cache, cache] {
                        let dx = Conv2D.backwardInput(dy: dy, w: wt, inputShape: x.shape, geometry: t.g, cache: c, kernels: kernels)
                        XCTAssertEqual(dx.shape, x.shape)
                        XCTAssertLessThan(dx.maxAbsDifference(expected), 2e-5, "case \(index), \(path), \(threads) threads")
                    }
                }
            }
        }
    }

    /// Both Winograd tiles, forced, against the reference on every fast path: F(2×2, 3×3) and
    /// F(4×4, 3×3) on partial tiles (odd sizes), asymmetric pads, several images sharing a block of
    /// lanes, blocks of lanes cut by a tile row, two depth blocks (c > 256), each activation, a
    /// fused residual and the input gradient; the cache holds the packing of the tile that ran.
    func testWinogradTilesMatchReference() throws {
        var rng = SeededRandom(seed: 23)
        let same = Conv2DGeometry(kernel: (3, 3), pads: (1, 1, 1, 1))
        let shapes: [Case] = [
            Case(n: 1, c: 16, m: 20, h: 56, w: 56, g: same),
            Case(n: 3, c: 20, m: 19, h: 9, w: 10, g: Conv2DGeometry(kernel: (3, 3), pads: (2, 0, 1, 1))),
            Case(n: 2, c: 300, m: 13, h: 14, w: 15, g: same),
            Case(n: 1, c: 24, m: 33, h: 30, w: 22, g: Conv2DGeometry(kernel: (3, 3))),
        ]
        for path in Self.paths(openblas: false) {
            for (threads, tile) in [(1, 2), (1, 4), (2, 2), (2, 4)] {
                for (index, t) in shapes.enumerated() {
                    let x = rng.tensor([t.n, t.c, t.h, t.w]), wt = rng.tensor([t.m, t.c, 3, 3], -0.3, 0.3), b = rng.tensor([t.m])
                    let reference = try Conv2D.referenceForward(x: x, w: wt, b: b, geometry: t.g, kernels: .reference)
                    let r = rng.tensor(reference.shape)
                    let bound = tile == 4 ? Self.boundF4 : Self.bound
                    try withKernels(path: path, threads: threads, winogradTile: tile) { kernels in
                        let cache = PackedWeightsCache()
                        for activation in [nil, ConvActivation.relu, .clip(-0.5, 0.7), .silu] {
                            var expected = reference
                            activation?.apply(&expected, level: 0)
                            let y = try Conv2D.forward(x: x, w: wt, b: b, geometry: t.g, activation: activation, cache: cache, kernels: kernels)
                            XCTAssertLessThan(relativeError(y, expected, scale: reference), bound,
                                              "F(\(tile)x\(tile)), case \(index), \(path), \(threads) threads, \(String(describing: activation))")
                        }
                        var expected = Elementwise.add(reference, r)
                        ConvActivation.relu.apply(&expected, level: 0)
                        let y = try Conv2D.forward(x: x, w: wt, b: b, geometry: t.g, activation: .relu, cache: cache, residual: r, kernels: kernels)
                        XCTAssertLessThan(relativeError(y, expected, scale: Elementwise.add(reference, r)), bound,
                                          "F(\(tile)x\(tile)) with residual, case \(index), \(path), \(threads) threads")
                        XCTAssertEqual(cache.forms, [tile == 4 ? .winograd4 : .winograd], "case \(index), \(path)")
                        // The input gradient runs on the same kernel (flipped, transposed weights).
                        let g = t.g, dy = r
                        let expectedDx = Conv2D.referenceBackwardInput(dy: dy, w: wt, inputShape: x.shape, geometry: g, kernels: .reference)
                        let dx = Conv2D.backwardInput(dy: dy, w: wt, inputShape: x.shape, geometry: g, cache: cache, kernels: kernels)
                        XCTAssertLessThan(relativeError(dx, expectedDx), bound, "F(\(tile)x\(tile)) input gradient, case \(index), \(path)")
                    }
                }
            }
        }
    }

    /// The AVX-512 and AVX2 Winograd transforms read their patches by rows (masked loads and
    /// permutes or shuffles, one implementation per level, blocks of 32 and 16 tiles): both tiles
    /// give the same bits on both levels, on planes whose blocks of lanes are cut into many
    /// segments (tile rows of 1, 2, 3 and 14 tiles), with images sharing a block, partial tiles,
    /// asymmetric and no padding, two depth blocks, ReLU, clip and a fused residual (the AVX-512
    /// F(4×4, 3×3) output transform stores by rows too). Not SiLU: AVX-512 stores take its
    /// exponential from a vector polynomial, AVX2 ones from the C library (`ck_activate512`).
    func testWinogradPatchesAreTheSameOnBothLevels() throws {
        guard KernelOptions.supportedPaths.contains(.avx512) else {
            print("testWinogradPatchesAreTheSameOnBothLevels: this CPU has no AVX-512 to compare with (\(CPU.summary))")
            return
        }
        var rng = SeededRandom(seed: 37)
        let same = Conv2DGeometry(kernel: (3, 3), pads: (1, 1, 1, 1))
        let shapes: [Case] = [
            Case(n: 5, c: 16, m: 9, h: 7, w: 7, g: same),
            Case(n: 4, c: 16, m: 5, h: 3, w: 4, g: same),
            Case(n: 2, c: 20, m: 7, h: 11, w: 10, g: Conv2DGeometry(kernel: (3, 3), pads: (2, 0, 1, 1))),
            Case(n: 2, c: 260, m: 6, h: 9, w: 13, g: Conv2DGeometry(kernel: (3, 3))),
            Case(n: 1, c: 16, m: 8, h: 56, w: 56, g: same),
        ]
        for tile in [2, 4] {
            for (index, t) in shapes.enumerated() {
                let x = rng.tensor([t.n, t.c, t.h, t.w]), wt = rng.tensor([t.m, t.c, 3, 3], -0.3, 0.3), b = rng.tensor([t.m])
                let (oh, ow) = t.g.outputSize(h: t.h, w: t.w)
                let r = rng.tensor([t.n, t.m, oh, ow])
                for (activation, residual) in [(nil, nil), (ConvActivation.relu, r), (.clip(-0.5, 0.7), nil), (.clip(-0.5, 0.7), r)] {
                    var outputs: [[Float]] = []
                    for path in [KernelOptions.Path.avx512, .avx2] {
                        try withKernels(path: path, threads: 1, winogradTile: tile) { kernels in
                            let cache = PackedWeightsCache()
                            let y = try Conv2D.forward(x: x, w: wt, b: b, geometry: t.g, activation: activation, cache: cache,
                                                       residual: residual, kernels: kernels)
                            XCTAssertEqual(cache.forms, [tile == 4 ? .winograd4 : .winograd], "case \(index), \(path)")
                            outputs.append(y.data)
                        }
                    }
                    XCTAssertEqual(outputs[0], outputs[1], "F(\(tile)x\(tile)), case \(index), \(String(describing: activation))")
                }
            }
        }
    }

    /// The tile with fewer transformed-domain products: F(4×4, 3×3) on resnet18's 56², 28² and
    /// 14² planes, F(2×2, 3×3) on one 7 × 7 plane (whose 4 tiles of 4 × 4 would fill a quarter
    /// of a block of lanes) but not on 16 of them, all in inference passes; F(2×2, 3×3) where a
    /// gradient may follow; a forced tile wins.
    func testWinogradTileChoice() {
        // The lanes a block has follow the path (and the CPU: an AVX2 CPU runs avx2 lanes).
        for kernels in Self.paths(openblas: false).map(KernelOptions.init(path:)) {
            XCTAssertEqual(Conv2D.winogradTile(n: 1, oh: 56, ow: 56, kernels: kernels, inference: true), 4)
            XCTAssertEqual(Conv2D.winogradTile(n: 1, oh: 28, ow: 28, kernels: kernels, inference: true), 4)
            XCTAssertEqual(Conv2D.winogradTile(n: 1, oh: 7, ow: 7, kernels: kernels, inference: true), 2)
            XCTAssertEqual(Conv2D.winogradTile(n: 16, oh: 7, ow: 7, kernels: kernels, inference: true), 4)
            // 16 tiles: one AVX2 block, half an AVX-512 block.
            XCTAssertEqual(Conv2D.winogradTile(n: 1, oh: 14, ow: 14, kernels: kernels, inference: true), kernels.level == 1 ? 4 : 2)
            // A pass that may feed a gradient: F(2×2, 3×3).
            XCTAssertEqual(Conv2D.winogradTile(n: 1, oh: 56, ow: 56, kernels: kernels, inference: false), 2)
            XCTAssertEqual(Conv2D.winogradTile(n: 1, oh: 7, ow: 7, kernels: kernels.with { $0.winogradTile = 4 }, inference: false), 4)
        }
    }

    /// Winograd and the implicit GEMM agree on a ResNet-sized layer, and the switch works; the
    /// AVX-512 and AVX2 paths take Winograd (each with its own packing), OpenBLAS the reference.
    func testWinogradMatchesImplicitGEMM() throws {
        var rng = SeededRandom(seed: 15)
        let g = Conv2DGeometry(kernel: (3, 3), pads: (1, 1, 1, 1))
        let x = rng.tensor([1, 64, 28, 28]), w = rng.tensor([64, 64, 3, 3], -0.1, 0.1), b = rng.tensor([64])
        var reference = try Conv2D.referenceForward(x: x, w: w, b: b, geometry: g, kernels: .reference)
        ConvActivation.relu.apply(&reference, level: 0)
        for path in Self.paths() {
            try withKernels(path: path, threads: 2) { kernels in
                let cache = PackedWeightsCache()
                let fast = try Conv2D.forward(x: x, w: w, b: b, geometry: g, activation: .relu, cache: cache, kernels: kernels)
                XCTAssertEqual(cache.forms, path == .openblas ? [] : [.winograd], "\(path)") // not inference: F(2×2, 3×3)
                let gemm = try Conv2D.forward(x: x, w: w, b: b, geometry: g, activation: .relu,
                                              kernels: kernels.with { $0.winograd = false })
                XCTAssertLessThan(relativeError(fast, reference), Self.bound, "\(path)")
                XCTAssertLessThan(relativeError(gemm, reference), Self.bound, "\(path)")
                // The input gradient decides nothing (masks and winners come from the forward):
                // it takes the tile with fewer products, F(4×4, 3×3) on 28 × 28.
                let dy = rng.tensor(reference.shape)
                let dx = Conv2D.backwardInput(dy: dy, w: w, inputShape: x.shape, geometry: g, cache: cache, kernels: kernels)
                let expected = Conv2D.referenceBackwardInput(dy: dy, w: w, inputShape: x.shape, geometry: g, kernels: .reference)
                XCTAssertEqual(cache.forms, path == .openblas ? [] : [.winograd, .winograd4], "\(path)")
                XCTAssertLessThan(relativeError(dx, expected), Self.boundF4, "\(path) input gradient")
            }
        }
        // Above the CPU's level (AVX-512 on an AVX2 CPU; a level no CPU has on an AVX-512 one)
        // the kernels refuse to run, before reading any operand, and the callers fall back.
        let above = ck_cpu_level() + 1
        XCTAssertEqual(ck_winograd(above, 2, nil, 8, 0, 8, nil, nil, 1, 0, 1, nil, 0, 0, 0, 0, nil), -1)
        XCTAssertEqual(ck_conv1x1_channels(above, nil, 8, 8, 0, 8, nil, 1, 0, 1, nil, 0, 0, 0, 0, nil), -1)
        XCTAssertEqual(ck_conv_channels(above, nil, 8, 0, 8, nil, nil, 0, 1, nil, 0, 0, 0, 0, nil), -1)
        XCTAssertEqual(ck_conv(above, nil, 8, 0, 8, nil, nil, 0, 1, nil, 0, 0, 0, 0, nil, 1), -1)
        XCTAssertEqual(ck_sgemm(above, 0, 0, 0, 1, 0, 1, 1, 1, nil, 1, nil, 1, 0, nil, 1), -1)
        XCTAssertEqual(ck_maxpool2d(above, nil, nil, 1, nil), -1)
    }

    /// 1×1 convolutions on small, deep planes and convolutions of up to 4 input channels (RGB
    /// stems) take the channel-major kernels (the cache holds their packing) and agree with the
    /// implicit GEMM they would otherwise run on; on AVX-512 shallow or wide 1×1 ones and deeper inputs
    /// keep the GEMM. Stems: odd sizes (a short tile at each row's end), strides, dilations,
    /// asymmetric pads, two images.
    func testChannelMajorMatchesImplicitGEMM() throws {
        var rng = SeededRandom(seed: 16)
        let pointwise = Conv2DGeometry(kernel: (1, 1))
        let cases: [(n: Int, c: Int, m: Int, h: Int, w: Int, g: Conv2DGeometry, channelMajor: Bool)] = [
            (1, 160, 960, 7, 7, pointwise, true),
            (2, 96, 72, 14, 14, pointwise, true),
            (1, 32, 64, 7, 7, pointwise, false),
            (1, 96, 64, 28, 28, pointwise, false),
            (1, 3, 64, 37, 37, Conv2DGeometry(kernel: (7, 7), strides: (2, 2), pads: (3, 3, 3, 3)), true),
            (2, 3, 40, 21, 19, Conv2DGeometry(kernel: (3, 3), strides: (2, 2), pads: (1, 1, 1, 1)), true),
            (1, 2, 33, 12, 23, Conv2DGeometry(kernel: (3, 5), strides: (1, 2), pads: (0, 2, 3, 1), dilations: (2, 1)), true),
            (1, 5, 16, 12, 12, Conv2DGeometry(kernel: (3, 3), pads: (1, 1, 1, 1)), false),
        ]
        for t in cases {
            let x = rng.tensor([t.n, t.c, t.h, t.w]), wt = rng.tensor([t.m, t.c, t.g.kernel.h, t.g.kernel.w], -0.1, 0.1)
            let b = rng.tensor([t.m])
            var reference = try Conv2D.referenceForward(x: x, w: wt, b: b, geometry: t.g, kernels: .reference)
            let r = rng.tensor(reference.shape)
            reference = Elementwise.add(reference, r)
            ConvActivation.clip(-0.5, 0.5).apply(&reference, level: 0)
            let label = "\(t.c) -> \(t.m) on \(t.h)x\(t.w), kernel \(t.g.kernel)"
            for (path, threads) in Self.paths(openblas: false).flatMap({ p in [1, 2].map { (p, $0) } }) {
                try withKernels(path: path, threads: threads) { kernels in
                    let cache = PackedWeightsCache()
                    let fast = try Conv2D.forward(x: x, w: wt, b: b, geometry: t.g, activation: .clip(-0.5, 0.5), cache: cache, residual: r, kernels: kernels)
                    // AVX2 takes the 1×1 channel-major kernel for every 1×1 of 16 channels or more
                    // on planes of at most 256 pixels, and the stem's as AVX-512 does.
                    let takes = path == .avx512 || t.c <= 4 ? t.channelMajor : t.g.kernel == (1, 1) && t.c >= 16 && t.h * t.w <= 256
                    XCTAssertEqual(cache.forms, [takes ? .channelPanels : .gemm], "\(label), \(path)")
                    let gemm = try Conv2D.forward(x: x, w: wt, b: b, geometry: t.g, activation: .clip(-0.5, 0.5), residual: r,
                                                  kernels: kernels.with { $0.channelMajor = false })
                    XCTAssertLessThan(fast.maxAbsDifference(reference), 1e-5, label)
                    XCTAssertLessThan(gemm.maxAbsDifference(reference), 1e-5, label)
                }
            }
        }
    }

    /// The channel-major 1×1 kernel runs a plane's last tile of 1-7 pixels through a loop of
    /// that length (`tile_sums_avx512`): each length, alone and after full tiles, on one and
    /// two threads, gives the reference's result, with a partial panel of channels.
    func testChannelMajorShortTilesMatchReference() throws {
        var rng = SeededRandom(seed: 23)
        let pointwise = Conv2DGeometry(kernel: (1, 1))
        // Planes of 1-7 pixels, and of 8-15 (one full tile, then the short one).
        let planes = [(1, 1), (1, 2), (3, 1), (2, 2), (1, 5), (2, 3), (1, 7), (3, 3), (2, 5), (1, 11), (3, 4), (1, 13), (2, 7), (3, 5)]
        for (h, w) in planes {
            let x = rng.tensor([1, 72, h, w]), wt = rng.tensor([40, 72, 1, 1], -0.1, 0.1), b = rng.tensor([40])
            let reference = try Conv2D.referenceForward(x: x, w: wt, b: b, geometry: pointwise, kernels: .reference)
            for (path, threads) in Self.paths(openblas: false).flatMap({ p in [1, 2].map { (p, $0) } }) {
                try withKernels(path: path, threads: threads) { kernels in
                    let cache = PackedWeightsCache()
                    let y = try Conv2D.forward(x: x, w: wt, b: b, geometry: pointwise, cache: cache, kernels: kernels)
                    XCTAssertEqual(cache.forms, [.channelPanels], "\(h)x\(w), \(path)")
                    XCTAssertLessThan(relativeError(y, reference), 4e-6, "\(h)x\(w), \(path), \(threads) threads")
                }
            }
        }
    }

    /// The AVX2 channel-major 1×1 and stem kernels (6 × 16 tiles, depth blocks carried over) and
    /// the AVX2 depthwise kernel (zero-padded rows) sum in the same order as their AVX-512 twins: the
    /// same bits on every shape, with ReLU and a residual. Runs where the CPU has both paths
    /// (on an AVX2-only CPU the paths' agreement with the reference is what the other tests check).
    func testAVX2KernelsGiveTheBitsOfAVX512() throws {
        guard KernelOptions.supportedPaths.contains(.avx512) else {
            print("testAVX2KernelsGiveTheBitsOfAVX512: this CPU has no AVX-512 to compare with (\(CPU.summary))")
            return
        }
        var rng = SeededRandom(seed: 31)
        let cases: [(n: Int, c: Int, m: Int, h: Int, w: Int, g: Conv2DGeometry)] = [
            (1, 160, 960, 7, 7, Conv2DGeometry(kernel: (1, 1))),   // depth blocks, many panels
            (2, 300, 45, 5, 3, Conv2DGeometry(kernel: (1, 1))),    // three depth blocks, a partial half panel
            (1, 64, 100, 15, 17, Conv2DGeometry(kernel: (1, 1))),
            (1, 7, 7, 13, 70, Conv2DGeometry(kernel: (3, 3), strides: (2, 2), pads: (0, 1, 1, 0), group: 7)),
            (2, 4, 4, 9, 45, Conv2DGeometry(kernel: (3, 3), pads: (1, 1, 1, 1), group: 4)),
            (1, 3, 3, 8, 71, Conv2DGeometry(kernel: (5, 5), strides: (2, 2), pads: (2, 2, 2, 2), group: 3)),
            (1, 2, 2, 6, 33, Conv2DGeometry(kernel: (5, 5), pads: (2, 2, 2, 2), group: 2)),
            (1, 2, 2, 5, 63, Conv2DGeometry(kernel: (3, 3), strides: (2, 2), pads: (1, 1, 1, 1), group: 2)),
            // Stems (channel-major, 8 × 32 against 6 × 16 tiles): short tiles at each row's end,
            // a partial half panel, strides 1 and 2 and a dilation.
            (1, 3, 64, 37, 37, Conv2DGeometry(kernel: (7, 7), strides: (2, 2), pads: (3, 3, 3, 3))),
            (2, 3, 45, 21, 19, Conv2DGeometry(kernel: (3, 3), strides: (2, 2), pads: (1, 1, 1, 1))),
            (1, 2, 33, 12, 23, Conv2DGeometry(kernel: (3, 5), strides: (1, 2), pads: (0, 2, 3, 1), dilations: (2, 1))),
            (1, 4, 20, 11, 13, Conv2DGeometry(kernel: (3, 3), pads: (1, 1, 1, 1))),
        ]
        for t in cases {
            let x = rng.tensor([t.n, t.c, t.h, t.w]), b = rng.tensor([t.m])
            let wt = rng.tensor([t.m, t.c / t.g.group, t.g.kernel.h, t.g.kernel.w], -0.2, 0.2)
            let (oh, ow) = t.g.outputSize(h: t.h, w: t.w)
            let r = rng.tensor([t.n, t.m, oh, ow])
            for residual in [nil, r] {
                var outputs: [[Float]] = []
                for path in [KernelOptions.Path.avx512, .avx2] {
                    try withKernels(path: path, threads: 2) { kernels in
                        let cache = PackedWeightsCache()
                        let grouped = t.g.group > 1
                        let y = try Conv2D.forward(x: x, w: wt, b: b, geometry: t.g, activation: .relu, cache: cache,
                                                   residual: grouped ? nil : residual, kernels: kernels)
                        if !grouped { XCTAssertEqual(cache.forms, [.channelPanels], "\(t), \(path)") }
                        outputs.append(y.data)
                    }
                }
                XCTAssertEqual(outputs[0], outputs[1], "\(t.c) -> \(t.m) on \(t.h)x\(t.w), kernel \(t.g.kernel), group \(t.g.group)")
            }
        }
    }

    /// How a convolution's micro-tiles are shared between threads: whole blocks first, then a
    /// slice of the other axis of each block left over (`share`); a 1×1 convolution to fewer
    /// channels than it reads splits its pixels unless that costs the busiest thread over 20 %
    /// more tiles (`splitsPixels`).
    func testSplitsShareTheBlocksLeftOver() {
        func ranges(_ share: Conv2D.Share) -> [[Range<Int>]] { share.all.map { [$0.blocks, $0.cross] } }
        // 7 blocks of 4 row tiles on 2 threads: 3 whole blocks each, then 2 rows of the 7th each.
        XCTAssertEqual(ranges(Conv2D.share(0, of: 2, blocks: 7, cross: 4)), [[0..<3, 0..<4], [6..<7, 0..<2]])
        XCTAssertEqual(ranges(Conv2D.share(1, of: 2, blocks: 7, cross: 4)), [[3..<6, 0..<4], [6..<7, 2..<4]])
        // One row tile left over goes to the last part; a single block is split by rows only.
        XCTAssertEqual(ranges(Conv2D.share(0, of: 2, blocks: 3, cross: 1)), [[0..<1, 0..<1]])
        XCTAssertEqual(ranges(Conv2D.share(1, of: 2, blocks: 3, cross: 1)), [[1..<2, 0..<1], [2..<3, 0..<1]])
        XCTAssertEqual(ranges(Conv2D.share(0, of: 2, blocks: 1, cross: 4)), [[0..<1, 0..<2]])
        // Pieces: the whole blocks in pieces − 1 runs, the rest last; empty runs are nil.
        let share = Conv2D.share(1, of: 2, blocks: 13, cross: 4)
        XCTAssertEqual((0..<4).map { k in share.piece(k, of: 4).map { [$0.blocks, $0.cross] } },
                       [[6..<8, 0..<4], [8..<10, 0..<4], [10..<12, 0..<4], [12..<13, 2..<4]])
        let small = Conv2D.share(0, of: 2, blocks: 4, cross: 4)
        XCTAssertEqual((0..<4).map { k in small.piece(k, of: 4).map { [$0.blocks, $0.cross] } },
                       [nil, [0..<1, 0..<4], [1..<2, 0..<4], nil])
        XCTAssertEqual(Conv2D.busiest(blocks: 7, cross: 4, parts: 2), 14)
        XCTAssertEqual(Conv2D.busiest(blocks: 8, cross: 4, parts: 2), 16)
        XCTAssertEqual(Conv2D.busiest(blocks: 3, cross: 1, parts: 2), 2)
        XCTAssertTrue(Conv2D.splitsPixels(pixelTiles: 52, channelTiles: 50, reduces: true, onTies: false))
        XCTAssertTrue(Conv2D.splitsPixels(pixelTiles: 40, channelTiles: 35, reduces: true, onTies: false))
        XCTAssertFalse(Conv2D.splitsPixels(pixelTiles: 43, channelTiles: 35, reduces: true, onTies: true))
        XCTAssertFalse(Conv2D.splitsPixels(pixelTiles: 52, channelTiles: 50, reduces: false, onTies: true))
        XCTAssertTrue(Conv2D.splitsPixels(pixelTiles: 50, channelTiles: 50, reduces: false, onTies: true))
        XCTAssertFalse(Conv2D.splitsPixels(pixelTiles: 50, channelTiles: 50, reduces: false, onTies: false))
        // Projections: MobileNetV2's 14 × 14 and 28 × 28 ones (weights under 1.5× the input),
        // not its 7 × 7 ones (weights 3.3-6.5× the input), nor an expansion.
        XCTAssertTrue(Conv2D.projects(m: 96, c: 576, plane: 196))
        XCTAssertTrue(Conv2D.projects(m: 32, c: 192, plane: 784))
        XCTAssertFalse(Conv2D.projects(m: 160, c: 960, plane: 49))
        XCTAssertFalse(Conv2D.projects(m: 320, c: 960, plane: 49))
        XCTAssertFalse(Conv2D.projects(m: 576, c: 96, plane: 196))
    }

    /// The same bits on one thread and two, with blocks left over in each kernel's split.
    func testTwoThreadsGiveTheSameBitsAsOne() throws {
        var rng = SeededRandom(seed: 17)
        let pointwise = Conv2DGeometry(kernel: (1, 1)), same = Conv2DGeometry(kernel: (3, 3), pads: (1, 1, 1, 1))
        let cases: [(c: Int, m: Int, side: Int, g: Conv2DGeometry, label: String)] = [
            (192, 32, 28, pointwise, "MobileNetV2's 28×28 projection: implicit GEMM, 25 column panels"),
            (384, 64, 14, pointwise, "a 14×14 projection: channel-major, 25 pixel tiles"),
            (64, 48, 28, same, "Winograd F(4×4), 49 tiles in 2 blocks"),
            (32, 40, 28, Conv2DGeometry(kernel: (3, 3), strides: (2, 2), pads: (1, 1, 1, 1)),
             "stride 2: implicit GEMM, 7 column panels"),
            (3, 32, 64, Conv2DGeometry(kernel: (3, 3), strides: (2, 2), pads: (1, 1, 1, 1)),
             "an RGB stem: channel-major, 32 output rows in runs of 4"),
        ]
        for t in cases {
            let x = rng.tensor([1, t.c, t.side, t.side]), wt = rng.tensor([t.m, t.c, t.g.kernel.h, t.g.kernel.w], -0.1, 0.1)
            let b = rng.tensor([t.m])
            var reference = try Conv2D.referenceForward(x: x, w: wt, b: b, geometry: t.g, kernels: .reference)
            let r = rng.tensor(reference.shape)
            reference = Elementwise.add(reference, r)
            ConvActivation.relu.apply(&reference, level: 0)
            for path in Self.paths(openblas: false) {
                var outputs: [Tensor] = []
                for threads in [1, 2] {
                    try withKernels(path: path, threads: threads) { kernels in
                        outputs.append(try Conv2D.forward(x: x, w: wt, b: b, geometry: t.g, activation: .relu, residual: r, inference: true, kernels: kernels))
                    }
                }
                XCTAssertEqual(outputs[0].data, outputs[1].data, "\(t.label), \(path): two threads differ from one")
                XCTAssertLessThan(relativeError(outputs[1], reference), t.label.hasPrefix("Winograd F(4") ? Self.boundF4 : Self.bound,
                                  "\(t.label), \(path)")
            }
        }
    }

    /// A 1×1 convolution that reads its input in place starts its column tiles on the input's
    /// cache lines, after a narrow tile up to the first line boundary of x + n0 (`ck_conv`):
    /// wherever x starts in its line (16 offsets), and wherever a range of columns starts (one
    /// range, or two cut at column 96 or 37, as threads split them), every output has the bits
    /// of x starting on a line boundary. 400 pixels (every depth row at x's offset in its line),
    /// 19 output channels (a partial 8-row panel), two column blocks.
    func testPointwiseTilesFromAnyAlignmentGiveTheSameBits() throws {
        for level: Int32 in Self.paths(openblas: false).map({ $0 == .avx512 ? 2 : 1 }) {
            let (c, m, h, w) = (40, 19, 8, 50)
            let plane = h * w
            var rng = SeededRandom(seed: 31)
            let weights = rng.tensor([m, c]), bias = rng.tensor([m]), x = rng.tensor([c, plane])
            let count = ck_packed_weights_count(level, Int32(m), Int32(c))
            let packed = UnsafeMutableRawPointer.allocate(byteCount: count * 4, alignment: 64).bindMemory(to: Float.self, capacity: count)
            let input = UnsafeMutableRawPointer.allocate(byteCount: (c * plane + 16) * 4, alignment: 64).bindMemory(to: Float.self, capacity: c * plane + 16)
            defer { UnsafeMutableRawPointer(packed).deallocate(); UnsafeMutableRawPointer(input).deallocate() }
            weights.data.withUnsafeBufferPointer { ck_pack_weights(level, Int32(m), Int32(c), $0.baseAddress!, packed) }
            var geometry = ck_conv_geometry(c: Int32(c), h: Int32(h), w: Int32(w), kh: 1, kw: 1, sh: 1, sw: 1, pt: 0, pl: 0,
                                            dh: 1, dw: 1, oh: Int32(h), ow: Int32(w))
            var expected: [UInt32]?
            for offset in 0..<16 {
                let xp = input + offset
                x.data.withUnsafeBufferPointer { xp.update(from: $0.baseAddress!, count: c * plane) }
                for cuts in [[0, plane], [0, 96, plane], [0, 37, plane]] {
                    var y = [Float](repeating: .nan, count: m * plane)
                    y.withUnsafeMutableBufferPointer { yp in
                        bias.data.withUnsafeBufferPointer { bp in
                            for (n0, n1) in zip(cuts, cuts.dropFirst()) {
                                XCTAssertEqual(ck_conv(level, packed, Int32(m), 0, Int32(m), &geometry, xp, Int32(n0), Int32(n1), bp.baseAddress,
                                                       0, Int32(CK_ACT_CLIP), 0, 6, yp.baseAddress!, Int32(plane)), 0)
                            }
                        }
                    }
                    let bits = y.map(\.bitPattern)
                    if let expected {
                        XCTAssertEqual(zip(bits, expected).filter { $0 != $1 }.count, 0,
                                       "level \(level): outputs that differ: x \(4 * offset) bytes into a line, ranges cut at \(cuts)")
                    } else {
                        XCTAssertFalse(y.contains { $0.isNaN }, "every output written")
                        expected = bits
                    }
                }
            }
        }
    }

    /// An expansion and its depthwise convolution computed a few channels at a time give the bits
    /// of the two layers one after the other, on both expansion kernels (implicit GEMM and
    /// channel panels), at strides 1 and 2, with a last chunk shorter than the others, with and
    /// without biases and activations, on a batch, one and two threads.
    func testPointwiseDepthwiseGivesTheBitsOfTwoLayers() throws {
        var rng = SeededRandom(seed: 23)
        let cases: [(n: Int, c: Int, m: Int, side: Int, k: Int, stride: Int, label: String)] = [
            (1, 24, 144, 28, 3, 1, "implicit GEMM, 18 chunks of 8"),
            (2, 16, 44, 19, 3, 2, "implicit GEMM, stride 2, a chunk of 4 last, two images"),
            (1, 64, 100, 14, 3, 1, "channel panels (196 pixels, 64 channels), a chunk of 4 last"),
            (1, 96, 160, 9, 5, 2, "channel panels, 5 × 5 at stride 2"),
        ]
        for t in cases {
            let x = rng.tensor([t.n, t.c, t.side, t.side])
            let w = rng.tensor([t.m, t.c, 1, 1], -0.2, 0.2), b = rng.tensor([t.m])
            let dw = rng.tensor([t.m, 1, t.k, t.k]), dwb = rng.tensor([t.m])
            let g = Conv2DGeometry(kernel: (1, 1))
            let dg = Conv2DGeometry(kernel: (t.k, t.k), strides: (t.stride, t.stride), pads: (t.k / 2, t.k / 2, t.k / 2, t.k / 2), group: t.m)
            for (act, dwAct) in [(ConvActivation.clip(0, 6), ConvActivation.clip(0, 6)), (nil, .relu)] as [(ConvActivation?, ConvActivation?)] {
                for (bias, dwBias) in [(b, dwb), (nil, nil)] as [(Tensor?, Tensor?)] {
                    for (path, threads) in Self.paths(openblas: false).flatMap({ p in [1, 2].map { (p, $0) } }) {
                        try withKernels(path: path, threads: threads) { kernels in
                            let t1 = try Conv2D.forward(x: x, w: w, b: bias, geometry: g, activation: act, kernels: kernels)
                            let layers = try Conv2D.forward(x: t1, w: dw, b: dwBias, geometry: dg, activation: dwAct, kernels: kernels)
                            let fused = try Conv2D.forwardPointwiseDepthwise(x: x, w: w, b: bias, geometry: g, activation: act, cache: nil,
                                                                             dw: dw, dwBias: dwBias, dwGeometry: dg, dwActivation: dwAct, kernels: kernels)
                            XCTAssertEqual(fused.shape, layers.shape, t.label)
                            XCTAssertEqual(fused.data, layers.data, "\(t.label), \(path), \(threads) threads, bias \(bias != nil)")
                        }
                    }
                }
            }
            // Against the reference kernels (the two layers above are themselves fast kernels).
            var expanded = try Conv2D.referenceForward(x: x, w: w, b: b, geometry: g, kernels: .reference)
            ConvActivation.clip(0, 6).apply(&expanded, level: 0)
            var reference = try Conv2D.referenceForward(x: expanded, w: dw, b: dwb, geometry: dg, kernels: .reference)
            ConvActivation.clip(0, 6).apply(&reference, level: 0)
            let fused = try Conv2D.forwardPointwiseDepthwise(x: x, w: w, b: b, geometry: g, activation: .clip(0, 6), cache: nil,
                                                             dw: dw, dwBias: dwb, dwGeometry: dg, dwActivation: .clip(0, 6), kernels: .best)
            XCTAssertLessThan(relativeError(fused, reference), 4e-6, t.label)
        }
        // Chunks: 8 channels (a GEMM tile) at 56 × 56, 32 (a panel) at 14 × 14, and at 7 × 7 as
        // many as 32 KB allow (160), cut to give eight tasks (128 of 960 channels, the last 64),
        // then to 96 so that two threads get 480 channels each (with 128: 512 and 448). One
        // part: every size ties, the largest stays.
        XCTAssertEqual(Conv2D.pointwiseDepthwiseChunk(channels: 144, plane: 3136, align: 8, tasksWanted: 8, parts: 2), 8)
        XCTAssertEqual(Conv2D.pointwiseDepthwiseChunk(channels: 576, plane: 196, align: 32, tasksWanted: 8, parts: 2), 32)
        XCTAssertEqual(Conv2D.pointwiseDepthwiseChunk(channels: 960, plane: 49, align: 32, tasksWanted: 8, parts: 2), 96)
        XCTAssertEqual(Conv2D.busiestChannels(channels: 960, chunk: 128, images: 1, parts: 2), 512)
        XCTAssertEqual(Conv2D.busiestChannels(channels: 960, chunk: 96, images: 1, parts: 2), 480)
        XCTAssertEqual(Conv2D.busiestChannels(channels: 960, chunk: 128, images: 3, parts: 2), 1472)
        XCTAssertEqual(Conv2D.pointwiseDepthwiseChunk(channels: 960, plane: 49, align: 32, tasksWanted: 4), 160)
    }

    /// One image's depthwise layers split by bands of output rows (`KernelOptions.rowBandsFrom`) give
    /// the bits of the split by channels: alone (the row-blocked 3×3 and 5×5 kernels at strides 1
    /// and 2, the general window kernel for a dilated and a 7×7 window, asymmetric padding) and
    /// after their expansion (both expansion kernels). Output heights of 30 and 26 put the second
    /// band's first row where half the plane is odd (15, 13): a band starting there would pair
    /// the 3×3 kernel's accumulators differently, so the cut must move to an even row.
    func testRowBandsGiveTheBitsOfTheChannelSplit() throws {
        XCTAssertEqual(Conv2D.rowBand(0, of: 2, rows: 56), 0..<28)
        XCTAssertEqual(Conv2D.rowBand(1, of: 2, rows: 30), 14..<30)
        XCTAssertEqual(Conv2D.rowBand(1, of: 2, rows: 7), 2..<7)
        var rng = SeededRandom(seed: 53)
        let paths = Self.paths(openblas: false)
        func splits(_ run: (KernelOptions) throws -> Tensor) throws -> [(bands: Tensor, channels: Tensor)] {
            try paths.map { path in
                var out: [Tensor] = []
                for from in [1, nil] as [Int?] {
                    try withKernels(path: path, threads: 2) { kernels in out.append(try run(kernels.with { $0.rowBandsFrom = from })) }
                }
                return (out[0], out[1])
            }
        }
        let alone: [(c: Int, side: Int, g: Conv2DGeometry, label: String)] = [
            (16, 30, Conv2DGeometry(kernel: (3, 3), pads: (1, 1, 1, 1), group: 16), "3×3"),
            (12, 52, Conv2DGeometry(kernel: (3, 3), strides: (2, 2), pads: (1, 1, 1, 1), group: 12), "3×3, stride 2"),
            (10, 33, Conv2DGeometry(kernel: (5, 5), strides: (2, 2), pads: (1, 1, 2, 2), group: 10), "5×5, stride 2, asymmetric pads"),
            (10, 26, Conv2DGeometry(kernel: (5, 5), pads: (2, 2, 2, 2), group: 10), "5×5"),
            (8, 30, Conv2DGeometry(kernel: (3, 3), pads: (2, 2, 2, 2), dilations: (2, 2), group: 8), "3×3, dilation 2 (window kernel)"),
            (8, 30, Conv2DGeometry(kernel: (7, 7), pads: (3, 3, 3, 3), group: 8), "7×7 (window kernel)"),
        ]
        for t in alone {
            let x = rng.tensor([1, t.c, t.side, t.side]), w = rng.tensor([t.c, 1, t.g.kernel.h, t.g.kernel.w]), b = rng.tensor([t.c])
            for (path, (bands, channels)) in zip(paths, try splits { kernels in try Conv2D.forward(x: x, w: w, b: b, geometry: t.g, activation: .clip(0, 6), kernels: kernels) }) {
                XCTAssertEqual(bands.shape, channels.shape, "\(t.label), \(path)")
                XCTAssertEqual(zip(bands.data, channels.data).filter { $0.bitPattern != $1.bitPattern }.count, 0, "\(t.label), \(path)")
            }
        }
        let pairs: [(c: Int, m: Int, side: Int, k: Int, stride: Int, label: String)] = [
            (16, 48, 30, 3, 1, "implicit GEMM expansion, 3×3"),
            (16, 40, 52, 3, 2, "implicit GEMM expansion, 3×3 at stride 2"),
            (64, 72, 13, 5, 1, "channel-panel expansion, 5×5, 13 rows"),
        ]
        for t in pairs {
            let x = rng.tensor([1, t.c, t.side, t.side])
            let w = rng.tensor([t.m, t.c, 1, 1], -0.2, 0.2), b = rng.tensor([t.m])
            let dw = rng.tensor([t.m, 1, t.k, t.k]), dwb = rng.tensor([t.m])
            let dg = Conv2DGeometry(kernel: (t.k, t.k), strides: (t.stride, t.stride), pads: (t.k / 2, t.k / 2, t.k / 2, t.k / 2), group: t.m)
            let results = try splits { kernels in
                try Conv2D.forwardPointwiseDepthwise(x: x, w: w, b: b, geometry: Conv2DGeometry(kernel: (1, 1)), activation: .clip(0, 6),
                                                     cache: nil, dw: dw, dwBias: dwb, dwGeometry: dg, dwActivation: .clip(0, 6), kernels: kernels)
            }
            for (path, (bands, channels)) in zip(paths, results) {
                XCTAssertEqual(bands.shape, channels.shape, "\(t.label), \(path)")
                XCTAssertEqual(zip(bands.data, channels.data).filter { $0.bitPattern != $1.bitPattern }.count, 0, "\(t.label), \(path)")
            }
        }
    }

    /// SiLU in a convolution's store gives the bits of the convolution, then the Sigmoid node's
    /// `Elementwise.sigmoid`, then the product, on every kernel path: the 1×1 read in place and
    /// its channel-major form, the implicit GEMM, Winograd, the stem's channel-major kernel, the
    /// depthwise kernel and its plain loop (over 64 taps), the AVX2 kernel with its edge tiles.
    func testSiLUInTheStoreGivesTheBitsOfSigmoidThenMul() throws {
        var rng = SeededRandom(seed: 29)
        let cases: [(c: Int, m: Int, side: Int, g: Conv2DGeometry, label: String)] = [
            (24, 40, 20, Conv2DGeometry(kernel: (1, 1)), "1×1 in place"),
            (64, 70, 9, Conv2DGeometry(kernel: (1, 1)), "1×1 channel-major"),
            (8, 19, 17, Conv2DGeometry(kernel: (3, 3), strides: (2, 2), pads: (1, 1, 1, 1)), "implicit GEMM"),
            (16, 24, 12, Conv2DGeometry(kernel: (3, 3), pads: (1, 1, 1, 1)), "Winograd"),
            (3, 32, 21, Conv2DGeometry(kernel: (3, 3), strides: (2, 2), pads: (1, 1, 1, 1)), "stem, channel-major"),
            (6, 6, 19, Conv2DGeometry(kernel: (5, 5), strides: (2, 2), pads: (2, 2, 2, 2), group: 6), "depthwise"),
            (4, 4, 13, Conv2DGeometry(kernel: (9, 9), pads: (4, 4, 4, 4), group: 4), "depthwise, plain loop"),
        ]
        for level in Self.paths() {
            for t in cases {
                let x = rng.tensor([1, t.c, t.side, t.side], -3, 3)
                let w = rng.tensor([t.m, t.c / t.g.group, t.g.kernel.h, t.g.kernel.w], -0.5, 0.5), b = rng.tensor([t.m])
                for threads in [1, 2] {
                    try withKernels(path: level, threads: threads) { kernels in
                        let plain = try Conv2D.forward(x: x, w: w, b: b, geometry: t.g, kernels: kernels)
                        let s = Elementwise.sigmoid(plain, kernels: kernels)
                        let fused = try Conv2D.forward(x: x, w: w, b: b, geometry: t.g, activation: .silu, kernels: kernels)
                        XCTAssertEqual(fused.data, zip(plain.data, s.data).map { $0 * $1 }, "\(t.label), level \(level), \(threads) threads")
                    }
                }
            }
        }
    }

    /// When a kernel cannot get its scratch memory, a convolution falls back to the reference
    /// kernel (and the fused expansion + depthwise to the two layers); with a fused residual it
    /// fails instead, since tasks that did get theirs may already have added the residual.
    func testScratchFailureFallsBackOrFails() throws {
        var rng = SeededRandom(seed: 41)
        let x = rng.tensor([2, 8, 15, 16]), w = rng.tensor([12, 8, 3, 3], -0.3, 0.3), b = rng.tensor([12])
        let g = Conv2DGeometry(kernel: (3, 3), strides: (2, 2), pads: (1, 1, 1, 1)) // implicit GEMM, packs into scratch
        var expected = try Conv2D.referenceForward(x: x, w: w, b: b, geometry: g, kernels: .reference)
        ConvActivation.relu.apply(&expected, level: 0)
        let r = rng.tensor(expected.shape)
        let pw = rng.tensor([24, 8, 1, 1], -0.3, 0.3), dw = rng.tensor([24, 1, 3, 3])
        let dg = Conv2DGeometry(kernel: (3, 3), pads: (1, 1, 1, 1), group: 24)
        let layers = try Conv2D.forward(x: try Conv2D.forward(x: x, w: pw, b: nil, geometry: Conv2DGeometry(kernel: (1, 1)), kernels: .reference),
                                        w: dw, b: nil, geometry: dg, kernels: .reference)
        Conv2D.failScratchForTests(true)
        defer { Conv2D.failScratchForTests(false) }
        for (path, threads) in Self.paths(openblas: false).flatMap({ p in [1, 2].map { (p, $0) } }) {
            try withKernels(path: path, threads: threads) { kernels in
                let y = try Conv2D.forward(x: x, w: w, b: b, geometry: g, activation: .relu, kernels: kernels)
                XCTAssertLessThan(relativeError(y, expected), 4e-6, "\(path), \(threads) threads")
                XCTAssertThrowsError(try Conv2D.forward(x: x, w: w, b: b, geometry: g, activation: .relu, residual: r, kernels: kernels)) { error in
                    XCTAssertTrue("\(error)".contains("scratch memory"), "\(error)")
                }
                let fused = try Conv2D.forwardPointwiseDepthwise(x: x, w: pw, b: nil, geometry: Conv2DGeometry(kernel: (1, 1)),
                                                                 activation: nil, cache: nil, dw: dw, dwBias: nil, dwGeometry: dg,
                                                                 dwActivation: nil, kernels: kernels)
                XCTAssertLessThan(relativeError(fused, layers), 4e-6, "pair, \(threads) threads")
            }
        }
    }

    /// The cache packs once per weight tensor and repacks when it is given other weights.
    func testPackedWeightsFollowTheWeights() throws {
        var rng = SeededRandom(seed: 12)
        let g = Conv2DGeometry(kernel: (3, 3), pads: (1, 1, 1, 1))
        let x = rng.tensor([1, 5, 8, 8])
        let w1 = rng.tensor([7, 5, 3, 3]), w2 = rng.tensor([7, 5, 3, 3])
        let cache = PackedWeightsCache(), kernels = KernelOptions.best
        for w in [w1, w1, w2, w1] {
            let y = try Conv2D.forward(x: x, w: w, b: nil, geometry: g, cache: cache, kernels: kernels)
            XCTAssertLessThan(y.maxAbsDifference(try Conv2D.referenceForward(x: x, w: w, b: nil, geometry: g, kernels: .reference)), 1e-5)
        }
        // Mutating a weight tensor in place gives it new storage (copy on write): no stale packing.
        var w3 = w1
        w3.data[0] += 1
        let y = try Conv2D.forward(x: x, w: w3, b: nil, geometry: g, cache: cache, kernels: kernels)
        XCTAssertLessThan(y.maxAbsDifference(try Conv2D.referenceForward(x: x, w: w3, b: nil, geometry: g, kernels: .reference)), 1e-5)
    }

    func testFastPoolingMatchesReference() throws {
        var rng = SeededRandom(seed: 13)
        let geometries: [PoolGeometry] = [
            PoolGeometry(kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1]),
            PoolGeometry(kernel: [3, 3], strides: [2, 2], pads: [0, 1, 1, 0], ceilMode: true), // row-blocked, past the edge
            PoolGeometry(kernel: [2, 2], strides: [2, 2]),
            PoolGeometry(kernel: [3, 2], strides: [2, 1], pads: [1, 0, 1, 1], dilations: [2, 1], ceilMode: true),
            PoolGeometry(kernel: [3, 3], strides: [3, 3], pads: [0, 0, 2, 2], ceilMode: true),
            PoolGeometry(kernel: [1, 1], strides: [2, 2]),
            PoolGeometry(kernel: [3, 3], strides: [1, 3], pads: [1, 2, 1, 2]), // the gather path (stride 3)
            PoolGeometry(kernel: [3, 3], strides: [1, 1], pads: [1, 0, 2, 1]), // row-blocked at stride 1 (AVX2 too)
        ]
        let kinds: [Pool.Kind] = [.max, .average(countIncludePad: false), .average(countIncludePad: true)]
        for (path, threads) in Self.paths().flatMap({ p in [1, 2].map { (p, $0) } }) {
            for (index, g) in geometries.enumerated() {
                var x = rng.tensor([2, 3, 9, 40]) // rows longer than one 16-lane vector
                x.data[5] = x.data[6] // a tie: the first maximum wins
                x.data[400] = .nan // a NaN never wins a max (first tap of some windows, inside others)
                for kind in kinds {
                    let reference = try Pool.referenceForward(x: x, geometry: g, kind: kind)
                    try withKernels(path: path, threads: threads) { kernels in
                        let fast = try Pool.forward2D(x: x, geometry: g, kind: kind, argmax: true, kernels: kernels)
                        XCTAssertEqual(fast.y.shape, reference.y.shape)
                        XCTAssertLessThan(fast.y.maxAbsDifference(reference.y), 1e-6, "geometry \(index), \(kind)")
                        XCTAssertEqual(fast.argmax, reference.argmax, "geometry \(index), \(kind)")
                        // Without indices, max pooling takes the vectorized sliding-window kernel.
                        let inference = try Pool.forward2D(x: x, geometry: g, kind: kind, argmax: false, kernels: kernels)
                        XCTAssertLessThan(inference.y.maxAbsDifference(reference.y), 1e-6, "geometry \(index), \(kind), no indices")
                        // (maxAbsDifference skips NaN: where NaN comes out must agree too.)
                        XCTAssertEqual(inference.y.data.map(\.isNaN), reference.y.data.map(\.isNaN), "geometry \(index), \(kind): NaN")
                        XCTAssertEqual(fast.y.data.map(\.isNaN), reference.y.data.map(\.isNaN), "geometry \(index), \(kind): NaN")
                    }
                }
            }
        }
    }

    /// Batch normalization's per-channel affine (and the ReLU fused after it) gives the bits of
    /// the plain loop a·x + b (product, then sum) then x > 0 ? x : 0, on both kernel levels, with
    /// planes split across two threads mid-image (the channel of each plane), partial vectors,
    /// NaN and signed zeros.
    func testBatchNormGivesTheBitsOfThePlainLoop() {
        var rng = SeededRandom(seed: 37)
        var x = rng.tensor([3, 5, 7, 41 * 41], -2, 2) // 3 × 5 planes of 11,767: 2^16 values and more
        x.data[0] = .nan
        x.data[1] = -0.0
        let a = rng.tensor([5], -1.5, 1.5).data, b = rng.tensor([5], -0.5, 0.5).data
        var expected = x
        let plane = 7 * 41 * 41
        for p in 0..<15 {
            let c = p % 5
            for i in 0..<plane {
                let t = a[c] * x.data[p * plane + i]
                expected.data[p * plane + i] = t + b[c]
            }
        }
        let relu = expected.data.map { $0 > 0 ? $0 : 0 }
        for level in Self.paths() {
            for threads in [1, 2] {
                withKernels(path: level, threads: threads) { kernels in
                    let y = BatchNorm.forward(x: x, a: a, b: b, kernels: kernels)
                    XCTAssertEqual(y.data.map(\.bitPattern), expected.data.map(\.bitPattern), "level \(level), \(threads) threads")
                    XCTAssertEqual(BatchNorm.forward(x: x, a: a, b: b, relu: true, kernels: kernels).data.map(\.bitPattern), relu.map(\.bitPattern),
                                   "ReLU: level \(level), \(threads) threads")
                }
            }
        }
    }

    /// Concatenation copies each part's blocks to their places, on one thread and (for 2^16
    /// values and more) two, along the first, a middle and the last axis.
    func testConcatPlacesEveryBlock() throws {
        var rng = SeededRandom(seed: 39)
        let parts = [rng.tensor([2, 3, 40, 50]), rng.tensor([2, 5, 40, 50]), rng.tensor([2, 1, 40, 50])]
        for threads in [1, 2] {
            try withKernels(path: KernelOptions.best.path, threads: threads) { kernels in
                let y = try Layout.concat(parts, axis: 1)
                XCTAssertEqual(y.shape, [2, 9, 40, 50])
                for i in 0..<2 {
                    var c0 = 0
                    for p in parts {
                        for c in 0..<p.shape[1] {
                            XCTAssertEqual(Array(y.data[((i * 9 + c0 + c) * 2000)..<((i * 9 + c0 + c + 1) * 2000)]),
                                           Array(p.data[((i * p.shape[1] + c) * 2000)..<((i * p.shape[1] + c + 1) * 2000)]))
                        }
                        c0 += p.shape[1]
                    }
                }
                XCTAssertEqual(try Layout.concat(parts.map { $0.reshaped([$0.count]) }, axis: 0).data, parts.flatMap(\.data))
                let columns = try Layout.concat([parts[0], parts[0]], axis: 3)
                XCTAssertEqual(columns.shape, [2, 3, 40, 100])
                XCTAssertEqual(Array(columns.data[100..<150]), Array(parts[0].data[50..<100]))
                XCTAssertEqual(Array(columns.data[150..<200]), Array(parts[0].data[50..<100]))
            }
        }
    }

    /// The vectorized sigmoid against the exact value in double precision, on both kernel levels
    /// (AVX-512's polynomial exp, and expf), including the tails, ±∞ and NaN.
    func testSigmoidMatchesExact() {
        var values: [Float] = [0, -0.0, 1e-8, -1e-8, 88, -88, 100, -100, 1000, -1000, .infinity, -.infinity, .nan]
        var rng = SeededRandom(seed: 31)
        values += rng.tensor([70_001], -30, 30).data // several vectors and a partial one, on two threads
        let x = Tensor(shape: [values.count], data: values)
        for level in Self.paths() {
            withKernels(path: level, threads: 2) { kernels in
                let y = Elementwise.sigmoid(x, kernels: kernels)
                var worst: Double = 0
                for (v, s) in zip(values, y.data) {
                    if v.isNaN { XCTAssertTrue(s.isNaN); continue }
                    let exact = 1 / (1 + Foundation.exp(-Double(v)))
                    // Relative error where the value is above 1e-30 (sigmoid(−100) ≈ 4e-44 is a
                    // subnormal that both levels flush to 0), absolute below.
                    worst = max(worst, abs(Double(s) - exact) / max(exact, 1e-30))
                }
                XCTAssertLessThan(worst, 1e-6, "level \(level)")
            }
        }
    }

    /// The broadcasting arithmetic runs give exactly what the closure-per-element path gives.
    func testArithmeticMatchesBinary() throws {
        var rng = SeededRandom(seed: 32)
        let shapes: [([Int], [Int])] = [
            ([2, 3, 4, 5], [2, 3, 4, 5]), ([2, 3, 4, 5], [3, 1, 1]), ([2, 3, 4, 5], [5]), ([1, 3, 1, 5], [2, 1, 4, 1]),
            ([2, 3, 4, 5], []), ([], [2, 3]), ([2, 1], [1, 3]), ([4, 1, 6], [4, 5, 1]), ([2, 3, 1, 1], [2, 3, 7, 7]), ([1], [1]),
            // 2^16 values and more, split by runs across two threads mid-axis: a squeeze-and-
            // excitation scaling (per channel), a row of 7 against columns, the same shape.
            ([2, 7, 61, 83], [2, 7, 1, 1]), ([3, 1, 7, 5000], [3, 9, 1, 5000]), ([70_001], [70_001]),
        ]
        let ops: [(Elementwise.Arithmetic, (Float, Float) -> Float)] = [(.add, +), (.sub, -), (.mul, *), (.div, /)]
        for (sa, sb) in shapes {
            let a = rng.tensor(sa), b = rng.tensor(sb, 0.5, 2)
            for (kind, f) in ops {
                for threads in [1, 2] {
                    try withKernels(path: KernelOptions.best.path, threads: threads) { kernels in
                        let fast = try Elementwise.arithmetic(a, b, kind), slow = try Elementwise.binary(a, b, f)
                        XCTAssertEqual(fast.shape, slow.shape, "\(sa) \(kind) \(sb)")
                        XCTAssertEqual(fast.data, slow.data, "\(sa) \(kind) \(sb), \(threads) threads")
                    }
                }
            }
        }
        XCTAssertThrowsError(try Elementwise.arithmetic(rng.tensor([2, 3]), rng.tensor([4]), .add))
    }

    /// OpenBLAS keeps one thread whatever `setThreads` asks for, on every path (its idle
    /// workers would spin beside Candela's threads, which split every product themselves), and
    /// a product on the OpenBLAS path split across two threads gives the bits of one thread.
    func testOpenBLASKeepsOneThreadBesideTheKernels() {
        let saved = BLAS.threadCount
        defer { BLAS.setThreads(saved) }
        BLAS.setThreads(2)
        XCTAssertEqual(BLAS.threadCount, 2)
        XCTAssertEqual(BLAS.threads, 1)
        var rng = SeededRandom(seed: 3)
        let (m, n, k) = (70, 300, 200)
        let a = rng.tensor([m, k]), b = rng.tensor([k, n])
        func product(threads: Int) -> [Float] {
            var c = [Float](repeating: 0, count: m * n)
            withThreads(threads) {
                a.data.withUnsafeBufferPointer { ap in b.data.withUnsafeBufferPointer { bp in c.withUnsafeMutableBufferPointer { cp in
                    BLAS.sgemm(kernels: .reference, m: m, n: n, k: k, a: ap.baseAddress!, lda: k, b: bp.baseAddress!, ldb: n,
                               c: cp.baseAddress!, ldc: n)
                } } }
            }
            return c
        }
        XCTAssertEqual(product(threads: 2), product(threads: 1))
        XCTAssertEqual(BLAS.threads, 1)
    }

    /// `Parallel.map` returns every item's result in index order, whichever thread ran it, and
    /// throws the lowest failing index's error after all items have run.
    func testParallelMapKeepsOrderAndTheFirstError() throws {
        struct Failure: Error, Equatable { let index: Int }
        for threads in [1, 2, 3] {
            XCTAssertEqual(try Parallel.map(threads, count: 37) { $0 * $0 }, (0..<37).map { $0 * $0 })
            let ran = ChunkCounter(count: 20)
            XCTAssertThrowsError(try Parallel.map(threads, count: 20) { i -> Int in
                ran.p[i] += 1
                if i == 13 || i == 7 { throw Failure(index: i) }
                return i
            }) { XCTAssertEqual($0 as? Failure, Failure(index: 7)) }
            XCTAssertEqual(Array(UnsafeBufferPointer(start: ran.p, count: 20)), Array(repeating: 1, count: 20))
            ran.p.deallocate()
        }
    }

    /// One counter per item, each written by the one task that runs it.
    final class ChunkCounter: @unchecked Sendable {
        let p: UnsafeMutablePointer<Int>
        init(count: Int) { p = .allocate(capacity: count); p.initialize(repeating: 0, count: count) }
    }

    /// The spinning pool behind `Parallel.run`: every item runs exactly once, for any split;
    /// nested calls and calls from several threads at once run (on the caller) instead of
    /// deadlocking; thousands of back-to-back jobs keep the hand-over between jobs right.
    func testParallelPoolRunsEveryItemOnce() {
        final class Counts: @unchecked Sendable {
            let p: UnsafeMutablePointer<Int>
            let n: Int
            init(_ n: Int) { self.n = n; p = .allocate(capacity: n); p.initialize(repeating: 0, count: n) }
            deinit { p.deallocate() }
            var allOnce: Bool { (0..<n).allSatisfy { p[$0] == 1 } }
        }
        for threads in [2, 3, 8] {
            for items in [1, 2, 3, 7, 100] {
                let c = Counts(items)
                Parallel.run(threads, items: items) { c.p[$0] += 1 }
                XCTAssertTrue(c.allOnce, "\(items) items on \(threads) threads")
            }
        }
        // Nested: each outer item runs an inner job over its own row.
        let nested = Counts(6 * 5)
        Parallel.run(2, items: 6) { i in Parallel.run(2, items: 5) { j in nested.p[i * 5 + j] += 1 } }
        XCTAssertTrue(nested.allOnce)
        // Several threads submitting at once, many jobs each.
        let shared = Counts(4 * 500 * 8)
        DispatchQueue.concurrentPerform(iterations: 4) { caller in
            for job in 0..<500 {
                Parallel.run(2, items: 8) { shared.p[(caller * 500 + job) * 8 + $0] += 1 }
            }
        }
        XCTAssertTrue(shared.allOnce)
        // Back to back from one thread.
        let sequential = Counts(20_000 * 2)
        for job in 0..<20_000 { Parallel.run(2, items: 2) { sequential.p[job * 2 + $0] += 1 } }
        XCTAssertTrue(sequential.allOnce)
        // Shares: every piece of every part once, also nested, from several threads and back to back.
        for (parts, pieces) in [(2, 1), (2, 4), (3, 5), (8, 3)] {
            let c = Counts(parts * pieces)
            Parallel.shares(parts, pieces: pieces) { part, piece in c.p[part * pieces + piece] += 1 }
            XCTAssertTrue(c.allOnce, "\(parts) parts of \(pieces) pieces")
        }
        let nestedShares = Counts(6 * 8)
        Parallel.run(2, items: 6) { i in Parallel.shares(2, pieces: 4) { part, piece in nestedShares.p[i * 8 + part * 4 + piece] += 1 } }
        XCTAssertTrue(nestedShares.allOnce)
        let mixed = Counts(4 * 300 * 8)
        DispatchQueue.concurrentPerform(iterations: 4) { caller in
            for job in 0..<300 {
                if job % 2 == 0 {
                    Parallel.shares(2, pieces: 4) { part, piece in mixed.p[(caller * 300 + job) * 8 + part * 4 + piece] += 1 }
                } else {
                    Parallel.run(2, items: 8) { mixed.p[(caller * 300 + job) * 8 + $0] += 1 }
                }
            }
        }
        XCTAssertTrue(mixed.allOnce)
    }

    /// A thread done with its part takes the other part's pieces from the end: part 1's first
    /// piece waits until its last one has run, which only the other thread can do while the
    /// first is blocked (or the caller runs all of part 1, last piece first).
    func testSharesLetAThreadTakeTheOthersPieces() {
        let lastDone = DispatchSemaphore(value: 0)
        final class Flag: @unchecked Sendable { var value = false }
        let signaled = Flag()
        Parallel.shares(2, pieces: 4) { part, piece in
            guard part == 1 else { return }
            if piece == 3 { lastDone.signal() }
            if piece == 0 { signaled.value = lastDone.wait(timeout: .now() + 10) == .success }
        }
        XCTAssertTrue(signaled.value, "part 1's last piece did not run while its first one waited")
    }
}
