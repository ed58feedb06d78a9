/// Data-movement kernels: transpose, concatenation, slicing, padding, gathering. Each is a
/// pure index map, so each backward is the adjoint map (scatter-add) beside its forward.
public enum Layout {
    /// Visits every multi-index of `shape` in row-major order.
    static func forEachIndex(_ shape: [Int], _ body: ([Int], Int) -> Void) {
        let n = shape.elementCount
        guard n > 0 else { return }
        var index = [Int](repeating: 0, count: shape.count)
        for flat in 0..<n {
            body(index, flat)
            var a = shape.count - 1
            while a >= 0 {
                index[a] += 1
                if index[a] < shape[a] { break }
                index[a] = 0
                a -= 1
            }
        }
    }

    /// y = transpose(x, perm): y.shape[i] = x.shape[perm[i]].
    public static func transpose(_ x: Tensor, perm: [Int]) -> Tensor {
        let outShape = perm.map { x.shape[$0] }
        let xs = x.strides
        let strides = perm.map { xs[$0] }
        var y = Tensor(shape: outShape)
        forEachIndex(outShape) { idx, flat in
            var src = 0
            for a in 0..<idx.count { src += idx[a] * strides[a] }
            y.data[flat] = x.data[src]
        }
        return y
    }

    /// The inverse permutation: transpose's adjoint.
    public static func inverse(_ perm: [Int]) -> [Int] {
        var inv = [Int](repeating: 0, count: perm.count)
        for (i, p) in perm.enumerated() { inv[p] = i }
        return inv
    }

    /// Concatenation along `axis`: for each index before the axis, every part's block copied in
    /// turn (memcpy); the copies of a large result (2^16 values and more: DenseNet's growing
    /// feature maps) shared out over `BLAS.threadCount` threads, by blocks.
    public static func concat(_ parts: [Tensor], axis: Int) throws -> Tensor {
        guard let first = parts.first else { throw TensorError("Concat needs at least one input") }
        var shape = first.shape
        for p in parts.dropFirst() {
            guard p.rank == first.rank, (0..<p.rank).allSatisfy({ $0 == axis || p.shape[$0] == first.shape[$0] }) else {
                throw TensorError("Concat: shapes \(first.shape) and \(p.shape) differ off axis \(axis)")
            }
        }
        shape[axis] = parts.reduce(0) { $0 + $1.shape[axis] }
        let outer = first.shape[..<axis].elementCount
        let chunks = parts.map { $0.shape[axis...].elementCount }, row = chunks.reduce(0, +)
        var y = Tensor(uninitializedShape: shape)
        guard y.count > 0 else { return y }
        // Block k = (o, p): part p's chunk of outer index o, at o·row + (the chunks before p).
        let offsets = chunks.indices.map { chunks[..<$0].reduce(0, +) }
        let blocks = outer * parts.count
        let threads = y.count >= 1 << 16 ? Swift.max(1, Swift.min(blocks, BLAS.threadCount)) : 1
        let sources = parts.map { $0.data }
        y.data.withUnsafeMutableBufferPointer { yp in
            let out = Destination(y: yp.baseAddress!)
            Parallel.run(threads, items: threads) { t in
                for k in (blocks * t / threads)..<(blocks * (t + 1) / threads) {
                    let (o, p) = (k / parts.count, k % parts.count)
                    sources[p].withUnsafeBufferPointer { src in
                        (out.y + o * row + offsets[p]).update(from: src.baseAddress! + o * chunks[p], count: chunks[p])
                    }
                }
            }
        }
        return y
    }

    /// A result buffer the threads of `concat` write disjoint blocks of.
    struct Destination: @unchecked Sendable {
        let y: UnsafeMutablePointer<Float>
    }

    /// Splits along `axis` into pieces of the given sizes: Concat's adjoint and ONNX `Split`.
    public static func split(_ x: Tensor, axis: Int, sizes: [Int]) throws -> [Tensor] {
        guard sizes.reduce(0, +) == x.shape[axis] else {
            throw TensorError("Split: sizes \(sizes) do not add up to \(x.shape[axis])")
        }
        let outer = x.shape[..<axis].elementCount
        let inner = x.shape[(axis + 1)...].elementCount
        var offset = 0
        return sizes.map { size in
            var s = x.shape
            s[axis] = size
            var data: [Float] = []
            data.reserveCapacity(s.elementCount)
            for o in 0..<outer {
                let start = (o * x.shape[axis] + offset) * inner
                data += x.data[start..<(start + size * inner)]
            }
            offset += size
            return Tensor(shape: s, data: data)
        }
    }

    /// Strided slice: for each axis, indices start, start+step, ... (already clamped; count given).
    public static func slice(_ x: Tensor, starts: [Int], steps: [Int], counts: [Int]) -> Tensor {
        let xs = x.strides
        var y = Tensor(shape: counts)
        forEachIndex(counts) { idx, flat in
            var src = 0
            for a in 0..<idx.count { src += (starts[a] + idx[a] * steps[a]) * xs[a] }
            y.data[flat] = x.data[src]
        }
        return y
    }

    /// Slice's adjoint: scatters dy back into a zero tensor of the input's shape.
    public static func sliceBackward(_ dy: Tensor, inputShape: [Int], starts: [Int], steps: [Int]) -> Tensor {
        var dx = Tensor(shape: inputShape)
        let xs = inputShape.rowMajorStrides
        forEachIndex(dy.shape) { idx, flat in
            var dst = 0
            for a in 0..<idx.count { dst += (starts[a] + idx[a] * steps[a]) * xs[a] }
            dx.data[dst] += dy.data[flat]
        }
        return dx
    }

    public enum PadMode: String, Sendable { case constant, reflect, edge, wrap }

    /// Source index along one axis for an output index, or nil for a constant pad.
    static func padSource(_ i: Int, begin: Int, size: Int, mode: PadMode) -> Int? {
        var j = i - begin
        if j >= 0 && j < size { return j }
        switch mode {
        case .constant: return nil
        case .edge: return min(max(j, 0), size - 1)
        case .reflect:
            guard size > 1 else { return 0 }
            let period = 2 * (size - 1)
            j = ((j % period) + period) % period
            return j < size ? j : period - j
        case .wrap:
            return ((j % size) + size) % size
        }
    }

    /// ONNX `Pad`: pads = begin pads for each axis, then end pads (negative values crop).
    public static func pad(_ x: Tensor, pads: [Int], mode: PadMode, value: Float) throws -> Tensor {
        let r = x.rank
        let shape = (0..<r).map { x.shape[$0] + pads[$0] + pads[$0 + r] }
        guard shape.allSatisfy({ $0 >= 0 }) else { throw TensorError("Pad: pads \(pads) crop more than the input \(x.shape)") }
        if mode != .constant, (0..<r).contains(where: { x.shape[$0] == 0 && shape[$0] > 0 }) {
            throw TensorError("Pad: \(mode.rawValue) mode needs a non-empty input")
        }
        let xs = x.strides
        var y = Tensor(shape: shape)
        forEachIndex(shape) { idx, flat in
            var src = 0
            for a in 0..<r {
                guard let s = padSource(idx[a], begin: pads[a], size: x.shape[a], mode: mode) else {
                    y.data[flat] = value
                    return
                }
                src += s * xs[a]
            }
            y.data[flat] = x.data[src]
        }
        return y
    }

    /// Pad's adjoint: each output gradient returns to the input element it was copied from.
    public static func padBackward(_ dy: Tensor, inputShape: [Int], pads: [Int], mode: PadMode) -> Tensor {
        let r = inputShape.count
        let xs = inputShape.rowMajorStrides
        var dx = Tensor(shape: inputShape)
        forEachIndex(dy.shape) { idx, flat in
            var src = 0
            for a in 0..<r {
                guard let s = padSource(idx[a], begin: pads[a], size: inputShape[a], mode: mode) else { return }
                src += s * xs[a]
            }
            dx.data[src] += dy.data[flat]
        }
        return dx
    }

    /// ONNX `Gather` along `axis` with (possibly negative) integer indices of any shape.
    public static func gather(_ x: Tensor, indices: Tensor, axis: Int) throws -> Tensor {
        let n = x.shape[axis]
        let outer = x.shape[..<axis].elementCount, inner = x.shape[(axis + 1)...].elementCount
        let idx = try indices.data.map { v -> Int in
            let i = Int(v)
            guard i >= -n && i < n else { throw TensorError("Gather: index \(i) out of range for axis of size \(n)") }
            return i < 0 ? i + n : i
        }
        let shape = Array(x.shape[..<axis]) + indices.shape + Array(x.shape[(axis + 1)...])
        var data: [Float] = []
        data.reserveCapacity(shape.elementCount)
        for o in 0..<outer {
            for i in idx {
                let start = (o * n + i) * inner
                data += x.data[start..<(start + inner)]
            }
        }
        return Tensor(shape: shape, data: data)
    }

    /// Gather's adjoint: scatter-add into the input's shape.
    public static func gatherBackward(_ dy: Tensor, indices: Tensor, inputShape: [Int], axis: Int) -> Tensor {
        let n = inputShape[axis]
        let outer = inputShape[..<axis].elementCount, inner = inputShape[(axis + 1)...].elementCount
        var dx = Tensor(shape: inputShape)
        var k = 0
        for o in 0..<outer {
            for v in indices.data {
                let i = Int(v) < 0 ? Int(v) + n : Int(v)
                for j in 0..<inner { dx.data[(o * n + i) * inner + j] += dy.data[k * inner + j] }
                k += 1
            }
        }
        return dx
    }
}
