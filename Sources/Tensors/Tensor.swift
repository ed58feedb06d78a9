/// A dense Float32 tensor with a logical row-major (C order) layout, NCHW for images as in ONNX.
///
/// Storage is a Swift array, so a `Tensor` is a value: copies are cheap until written
/// (copy-on-write). Kernels read and write `data` directly through unsafe buffers.
public struct Tensor: Sendable, Equatable {
    /// Extent of each axis, outermost first, e.g. `[N, C, H, W]`.
    public var shape: [Int]
    /// Elements in row-major order; `data.count == shape.product`.
    public var data: [Float]

    /// Creates a tensor from a shape and matching data.
    public init(shape: [Int], data: [Float]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative extent in shape \(shape)")
        precondition(shape.elementCount == data.count,
                     "shape \(shape) needs \(shape.elementCount) elements, got \(data.count)")
        self.shape = shape
        self.data = data
    }

    /// A tensor of `shape` filled with `value`.
    public init(shape: [Int], repeating value: Float = 0) {
        self.init(shape: shape, data: [Float](repeating: value, count: shape.elementCount))
    }

    /// A tensor of `shape` whose elements the caller overwrites before reading (no zero fill:
    /// kernels that write every output element use it).
    public init(uninitializedShape shape: [Int]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative extent in shape \(shape)")
        let count = shape.elementCount
        self.shape = shape
        self.data = [Float](unsafeUninitializedCapacity: count) { _, initialized in initialized = count }
    }

    /// A rank-0 tensor holding one value.
    public init(scalar: Float) { self.init(shape: [], data: [scalar]) }

    public var rank: Int { shape.count }
    public var count: Int { data.count }

    /// The same elements viewed with another shape of equal element count.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        Tensor(shape: newShape, data: data)
    }

    /// Row-major strides of `shape`, in elements.
    public var strides: [Int] { shape.rowMajorStrides }

    /// Item `n` of the outermost axis, keeping that axis with extent 1: (N,...) -> (1,...).
    public func item(_ n: Int) -> Tensor {
        precondition(rank >= 1 && n >= 0 && n < shape[0])
        let inner = count / Swift.max(shape[0], 1)
        var s = shape
        s[0] = 1
        return Tensor(shape: s, data: Array(data[(n * inner)..<((n + 1) * inner)]))
    }

    /// Concatenates tensors along the outermost axis; all must agree on the other axes.
    public static func stack(_ parts: [Tensor]) -> Tensor {
        precondition(!parts.isEmpty)
        let inner = Array(parts[0].shape.dropFirst())
        var data: [Float] = []
        data.reserveCapacity(parts.reduce(0) { $0 + $1.count })
        var n = 0
        for p in parts {
            precondition(Array(p.shape.dropFirst()) == inner, "cannot stack \(p.shape) with \(parts[0].shape)")
            data += p.data
            n += p.shape.first ?? 1
        }
        return Tensor(shape: [n] + inner, data: data)
    }

    /// Largest absolute elementwise difference to `other` (same shape required).
    public func maxAbsDifference(_ other: Tensor) -> Float {
        precondition(shape == other.shape, "shape \(shape) vs \(other.shape)")
        var m: Float = 0
        for i in 0..<count { m = Swift.max(m, abs(data[i] - other.data[i])) }
        return m
    }
}

extension Collection where Element == Int {
    /// Product of the extents: the number of elements of a tensor with this shape.
    public var elementCount: Int { reduce(1, *) }

    /// The product of the extents, or nil when it overflows `Int` (shapes read from files).
    public var checkedElementCount: Int? {
        var product = 1
        for d in self {
            let (p, overflow) = product.multipliedReportingOverflow(by: d)
            if overflow { return nil }
            product = p
        }
        return product
    }
}

extension Array where Element == Int {
    /// Row-major strides for this shape.
    public var rowMajorStrides: [Int] {
        var s = [Int](repeating: 1, count: count)
        var acc = 1
        for i in stride(from: count - 1, through: 0, by: -1) {
            s[i] = acc
            acc *= self[i]
        }
        return s
    }
}
