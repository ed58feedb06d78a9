/// NumPy `matmul`: (..., M, K) · (..., K, N) -> (..., M, N), batch axes broadcast; a 1-D left
/// operand is a row (1, K), a 1-D right operand a column (K, 1), and those axes are dropped.
public enum MatMul {
    public static func forward(_ a: Tensor, _ b: Tensor, kernels: KernelOptions) throws -> Tensor {
        guard a.rank >= 1, b.rank >= 1 else { throw TensorError("MatMul: scalars are not matrices") }
        let a2 = a.rank == 1 ? a.reshaped([1, a.shape[0]]) : a
        let b2 = b.rank == 1 ? b.reshaped([b.shape[0], 1]) : b
        let (m, k) = (a2.shape[a2.rank - 2], a2.shape[a2.rank - 1])
        let (kb, n) = (b2.shape[b2.rank - 2], b2.shape[b2.rank - 1])
        guard k == kb else { throw TensorError("MatMul: inner dimensions differ: \(a.shape) and \(b.shape)") }
        let batch = try Elementwise.broadcastShape(Array(a2.shape.dropLast(2)), Array(b2.shape.dropLast(2)))
        // The broadcast operands and the product, checked before allocating (docs/limits.md).
        for shape in [batch + [m, k], batch + [k, n], batch + [m, n]] { try Limits.checkShape(shape, "MatMul") }
        let ab = try Elementwise.binary(a2, Tensor(shape: batch + [m, k]), { v, _ in v })
        let bb = try Elementwise.binary(b2, Tensor(shape: batch + [k, n]), { v, _ in v })
        var y = Tensor(shape: batch + [m, n])
        let count = batch.elementCount
        ab.data.withUnsafeBufferPointer { ap in
            bb.data.withUnsafeBufferPointer { bp in
                y.data.withUnsafeMutableBufferPointer { yp in
                    for i in 0..<count {
                        BLAS.sgemm(kernels: kernels, m: m, n: n, k: k, a: ap.baseAddress! + i * m * k, lda: k,
                                   b: bp.baseAddress! + i * k * n, ldb: n, c: yp.baseAddress! + i * m * n, ldc: n)
                    }
                }
            }
        }
        var shape = batch
        if a.rank > 1 { shape.append(m) }
        if b.rank > 1 { shape.append(n) }
        return y.reshaped(shape)
    }

    /// dA = dY · Bᵀ, summed over the batch axes A was broadcast along.
    public static func backwardA(dy: Tensor, a: Tensor, b: Tensor, kernels: KernelOptions) throws -> Tensor {
        let b2 = b.rank == 1 ? b.reshaped([b.shape[0], 1]) : b
        let bt = Layout.transpose(b2, perm: Array(0..<(b2.rank - 2)) + [b2.rank - 1, b2.rank - 2])
        var dyFull = dy
        if a.rank == 1 { dyFull = dyFull.reshaped(Array(dy.shape.dropLast(b.rank > 1 ? 1 : 0)) + [1] + (b.rank > 1 ? [dy.shape.last!] : [])) }
        if b.rank == 1 { dyFull = dyFull.reshaped(dyFull.shape + [1]) }
        let full = try forward(dyFull, bt, kernels: kernels)
        let a2shape = a.rank == 1 ? [1, a.shape[0]] : a.shape
        return Elementwise.sumToShape(full, a2shape).reshaped(a.shape)
    }
}
