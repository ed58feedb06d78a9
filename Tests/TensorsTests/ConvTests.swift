import TestSupport
import XCTest
@testable import Tensors

/// Conv2D against a direct (seven-loop) convolution and its backward against finite differences.
final class ConvTests: XCTestCase {
    /// Independent reference: the textbook definition, no im2col, no BLAS.
    func directConv(_ x: Tensor, _ w: Tensor, _ b: Tensor?, _ g: Conv2DGeometry) -> Tensor {
        let (n, c, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (m, cg, kh, kw) = (w.shape[0], w.shape[1], w.shape[2], w.shape[3])
        let (oh, ow) = g.outputSize(h: h, w: wd)
        let mg = m / g.group
        var y = Tensor(shape: [n, m, oh, ow])
        for i in 0..<n { for o in 0..<m { for oy in 0..<oh { for ox in 0..<ow {
            var s = Double(b?.data[o] ?? 0)
            let group = o / mg
            for ci in 0..<cg { for ky in 0..<kh { for kx in 0..<kw {
                let iy = oy * g.strides.h - g.pads.top + ky * g.dilations.h
                let ix = ox * g.strides.w - g.pads.left + kx * g.dilations.w
                guard iy >= 0, iy < h, ix >= 0, ix < wd else { continue }
                let xv = x.data[((i * c + group * cg + ci) * h + iy) * wd + ix]
                s += Double(xv) * Double(w.data[((o * cg + ci) * kh + ky) * kw + kx])
            } } }
            y.data[((i * m + o) * oh + oy) * ow + ox] = Float(s)
        } } } }
        return y
    }

    /// Random geometries: strided, padded (asymmetric), dilated, grouped, depthwise, pointwise.
    func geometries() -> [(c: Int, m: Int, h: Int, w: Int, g: Conv2DGeometry)] {
        [
            (3, 4, 7, 6, Conv2DGeometry(kernel: (3, 3))),
            (3, 5, 9, 8, Conv2DGeometry(kernel: (3, 3), strides: (2, 2), pads: (1, 1, 1, 1))),
            (2, 3, 9, 9, Conv2DGeometry(kernel: (3, 3), pads: (2, 2, 2, 2), dilations: (2, 2))),
            (4, 6, 6, 7, Conv2DGeometry(kernel: (3, 2), strides: (2, 1), pads: (0, 1, 1, 0), group: 2)),
            (4, 4, 6, 6, Conv2DGeometry(kernel: (3, 3), pads: (1, 1, 1, 1), group: 4)),
            (5, 3, 4, 5, Conv2DGeometry(kernel: (1, 1))),
            (6, 6, 7, 7, Conv2DGeometry(kernel: (5, 5), strides: (3, 2), pads: (2, 1, 0, 2), dilations: (1, 2), group: 3)),
        ]
    }

    func testForwardMatchesDirectConvolution() throws {
        var rng = SeededRandom(seed: 1)
        for (c, m, h, w, g) in geometries() {
            let x = rng.tensor([2, c, h, w])
            let wt = rng.tensor([m, c / g.group, g.kernel.h, g.kernel.w])
            let b = rng.tensor([m])
            let y = try Conv2D.forward(x: x, w: wt, b: b, geometry: g, kernels: .best)
            let ref = directConv(x, wt, b, g)
            XCTAssertEqual(y.shape, ref.shape)
            XCTAssertLessThan(y.maxAbsDifference(ref), 1e-5, "geometry \(g)")
        }
    }

    func testBackwardInputMatchesFiniteDifferences() throws {
        var rng = SeededRandom(seed: 2)
        for (c, m, h, w, g) in geometries() {
            let x = rng.tensor([2, c, h, w])
            let wt = rng.tensor([m, c / g.group, g.kernel.h, g.kernel.w])
            let y = try Conv2D.forward(x: x, w: wt, b: nil, geometry: g, kernels: .best)
            let dy = rng.tensor(y.shape)
            let dx = Conv2D.backwardInput(dy: dy, w: wt, inputShape: x.shape, geometry: g, kernels: .best)
            let numeric = try FiniteDifference.gradient(at: x) {
                FiniteDifference.dot(try Conv2D.forward(x: $0, w: wt, b: nil, geometry: g, kernels: .best), dy)
            }
            XCTAssertLessThan(FiniteDifference.relativeError(dx, numeric), 1e-3, "geometry \(g)")
        }
    }

    func testChannelMismatchIsAnError() {
        let x = Tensor(shape: [1, 3, 5, 5])
        let w = Tensor(shape: [2, 2, 3, 3])
        XCTAssertThrowsError(try Conv2D.forward(x: x, w: w, b: nil, geometry: Conv2DGeometry(kernel: (3, 3)), kernels: .best)) {
            XCTAssertTrue("\($0)".contains("3 channels"))
        }
    }
}
