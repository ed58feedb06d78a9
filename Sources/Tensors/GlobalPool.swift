/// Global pooling over all spatial axes: (N,C,D1,...) -> (N,C,1,...), each backward beside its forward.
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
