/// Max pooling and global average pooling over (N,C,H,W), each backward beside its forward.
public struct Pool2DGeometry: Sendable {
    public var kernel: (h: Int, w: Int)
    public var strides: (h: Int, w: Int)
    public var pads: (top: Int, left: Int, bottom: Int, right: Int)
    public var dilations: (h: Int, w: Int)
    public var ceilMode: Bool

    public init(kernel: (Int, Int), strides: (Int, Int), pads: (Int, Int, Int, Int) = (0, 0, 0, 0),
                dilations: (Int, Int) = (1, 1), ceilMode: Bool = false) {
        self.kernel = (kernel.0, kernel.1)
        self.strides = (strides.0, strides.1)
        self.pads = (pads.0, pads.1, pads.2, pads.3)
        self.dilations = (dilations.0, dilations.1)
        self.ceilMode = ceilMode
    }

    /// Output size with PyTorch/ONNX rules; in ceil mode the last window must start inside
    /// the input or its leading padding.
    public func outputSize(h: Int, w: Int) -> (h: Int, w: Int) {
        func one(_ size: Int, _ k: Int, _ s: Int, _ p0: Int, _ p1: Int, _ d: Int) -> Int {
            let span = size + p0 + p1 - (d * (k - 1) + 1)
            var o = (ceilMode ? (span + s - 1) / s : span / s) + 1
            if ceilMode && (o - 1) * s >= size + p0 { o -= 1 }
            return o
        }
        return (one(h, kernel.h, strides.h, pads.top, pads.bottom, dilations.h),
                one(w, kernel.w, strides.w, pads.left, pads.right, dilations.w))
    }
}

public enum MaxPool2D {
    /// y[n,c,i,j] = max over the window; also returns the flat input index of each maximum
    /// (first maximum wins on ties, as PyTorch) for the backward pass.
    ///
    /// - Parameter x: (N,C,H,W)
    /// - Returns: y: (N,C,OH,OW) and argmax: N*C*OH*OW indices into x.data
    public static func forward(x: Tensor, geometry g: Pool2DGeometry) throws -> (y: Tensor, argmax: [Int32]) {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (oh, ow) = g.outputSize(h: h, w: w)
        guard oh > 0, ow > 0 else { throw TensorError("MaxPool: output would be empty for input \(x.shape)") }
        var y = Tensor(shape: [n, c, oh, ow])
        var argmax = [Int32](repeating: -1, count: n * c * oh * ow)
        x.data.withUnsafeBufferPointer { xp in
            for plane in 0..<(n * c) {
                let base = plane * h * w
                for oy in 0..<oh {
                    for ox in 0..<ow {
                        var best = -Float.infinity
                        var bestIndex = -1
                        for ki in 0..<g.kernel.h {
                            let iy = oy * g.strides.h - g.pads.top + ki * g.dilations.h
                            if iy < 0 || iy >= h { continue }
                            for kj in 0..<g.kernel.w {
                                let ix = ox * g.strides.w - g.pads.left + kj * g.dilations.w
                                if ix < 0 || ix >= w { continue }
                                let v = xp[base + iy * w + ix]
                                if v > best || bestIndex < 0 { best = v; bestIndex = base + iy * w + ix }
                            }
                        }
                        let o = (plane * oh + oy) * ow + ox
                        y.data[o] = best
                        argmax[o] = Int32(bestIndex)
                    }
                }
            }
        }
        return (y, argmax)
    }

    /// dx[argmax[o]] += dy[o]: the gradient flows to each window's winner only.
    public static func backward(dy: Tensor, argmax: [Int32], inputShape: [Int]) -> Tensor {
        var dx = Tensor(shape: inputShape)
        for o in 0..<dy.count where argmax[o] >= 0 {
            dx.data[Int(argmax[o])] += dy.data[o]
        }
        return dx
    }
}

public enum GlobalAveragePool {
    /// y[n,c] = mean over H,W of x[n,c].  x: (N,C,H,W) -> y: (N,C,1,1)
    public static func forward(x: Tensor) -> Tensor {
        let (n, c) = (x.shape[0], x.shape[1])
        let plane = x.shape.dropFirst(2).elementCount
        var y = Tensor(shape: [n, c] + Array(repeating: 1, count: x.rank - 2))
        for p in 0..<(n * c) {
            var s: Float = 0
            for k in 0..<plane { s += x.data[p * plane + k] }
            y.data[p] = s / Float(plane)
        }
        return y
    }

    /// dx[n,c,h,w] = dy[n,c] / (H*W).
    public static func backward(dy: Tensor, inputShape: [Int]) -> Tensor {
        let plane = inputShape.dropFirst(2).elementCount
        var dx = Tensor(shape: inputShape)
        for p in 0..<dy.count {
            let g = dy.data[p] / Float(plane)
            for k in 0..<plane { dx.data[p * plane + k] = g }
        }
        return dx
    }
}
