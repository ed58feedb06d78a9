/// Global pooling over all spatial axes: (N,C,D1,...) -> (N,C,1,...), each backward beside its forward.
public enum GlobalAveragePool {
    /// y[n,c] = mean over H,W of x[n,c].  x: (N,C,H,W) -> y: (N,C,1,1)
    ///
    /// Each plane is summed in order, one addition after the other (the bits of a plain loop).
    /// Eight planes go side by side, so that eight chains of additions overlap. Large inputs are
    /// split by channels across the threads, as the convolution before it mostly is: reading
    /// the half of MobileNetV2's last activation (1280 planes of 7 × 7) that the other core
    /// wrote doubled the pool's serial time.
    public static func forward(x: Tensor) -> Tensor {
        let (n, c) = (x.shape[0], x.shape[1])
        let plane = x.shape.dropFirst(2).elementCount
        var y = Tensor(shape: [n, c] + Array(repeating: 1, count: x.rank - 2))
        let planes = n * c
        let parts = x.count >= 1 << 15 ? Swift.min(BLAS.threadCount, planes) : 1
        x.data.withUnsafeBufferPointer { xb in
            y.data.withUnsafeMutableBufferPointer { yb in
                guard let xp = xb.baseAddress, let yp = yb.baseAddress else { return }
                let shared = PlanePointers(x: xp, y: yp)
                // Each thread its planes in four runs, the first done takes the other's last. The
                // runs are cut at multiples of eight planes, the eight `meanOfPlanes` sums side by
                // side: cut anywhere, a pool of 32 planes went one plane at a time.
                let pieces = parts > 1 ? 4 : 1
                Parallel.shares(parts, pieces: pieces) { part, piece in
                    meanOfPlanes(shared.x, planes: Parallel.items(ofPiece: piece, of: pieces, part: part, of: parts, items: planes,
                                                                  multiple: 8),
                                 plane: plane, into: shared.y)
                }
            }
        }
        return y
    }

    /// y[p] = the mean of plane p of x, for p in `planes`, eight planes at a time.
    static func meanOfPlanes(_ x: UnsafePointer<Float>, planes: Range<Int>, plane: Int, into y: UnsafeMutablePointer<Float>) {
        var p = planes.lowerBound
        while p + 8 <= planes.upperBound {
            let b = x + p * plane
            var (s0, s1, s2, s3, s4, s5, s6, s7): (Float, Float, Float, Float, Float, Float, Float, Float) = (0, 0, 0, 0, 0, 0, 0, 0)
            for k in 0..<plane {
                s0 += b[k]; s1 += b[plane + k]; s2 += b[2 * plane + k]; s3 += b[3 * plane + k]
                s4 += b[4 * plane + k]; s5 += b[5 * plane + k]; s6 += b[6 * plane + k]; s7 += b[7 * plane + k]
            }
            (y[p], y[p + 1], y[p + 2], y[p + 3]) = (s0 / Float(plane), s1 / Float(plane), s2 / Float(plane), s3 / Float(plane))
            (y[p + 4], y[p + 5], y[p + 6], y[p + 7]) = (s4 / Float(plane), s5 / Float(plane), s6 / Float(plane), s7 / Float(plane))
            p += 8
        }
        for q in p..<planes.upperBound {
            var s: Float = 0
            for k in 0..<plane { s += x[q * plane + k] }
            y[q] = s / Float(plane)
        }
    }

    /// The input and output of one pooling, shared by the threads that split it (disjoint writes).
    private struct PlanePointers: @unchecked Sendable {
        let x: UnsafePointer<Float>
        let y: UnsafeMutablePointer<Float>
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

public enum GlobalMaxPool {
    /// y[n,c] = max over the spatial axes; also the flat index of each maximum (first on ties).
    public static func forward(x: Tensor) -> (y: Tensor, argmax: [Int]) {
        let (n, c) = (x.shape[0], x.shape[1])
        let plane = x.shape.dropFirst(2).elementCount
        var y = Tensor(shape: [n, c] + Array(repeating: 1, count: x.rank - 2))
        var argmax = [Int](repeating: 0, count: n * c)
        for p in 0..<(n * c) {
            var best = p * plane
            for k in 0..<plane where x.data[p * plane + k] > x.data[best] { best = p * plane + k }
            y.data[p] = x.data[best]
            argmax[p] = best
        }
        return (y, argmax)
    }

    /// dx[argmax] = dy.
    public static func backward(dy: Tensor, argmax: [Int], inputShape: [Int]) -> Tensor {
        var dx = Tensor(shape: inputShape)
        for p in 0..<dy.count { dx.data[argmax[p]] += dy.data[p] }
        return dx
    }
}
