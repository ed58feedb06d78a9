import Tensors

/// Normalizes a possibly negative axis against `rank`.
func normalizeAxis(_ axis: Int, rank: Int) throws -> Int {
    let a = axis < 0 ? axis + rank : axis
    guard a >= 0 && a < rank else { throw EngineError("axis \(axis) is out of range for rank \(rank)") }
    return a
}

/// Integer values of a shape-like input (int64 tensors are carried as Float32).
func integers(_ t: Tensor) -> [Int] { t.data.map { $0 >= 9.2e18 ? Int.max : ($0 <= -9.2e18 ? Int.min : Int($0)) } }

/// ONNX `Reshape`: 0 copies the input extent (unless allowzero), −1 is inferred.
struct ReshapeOp: Operator {
    let allowZero: Bool
    init(_ a: Attributes) throws { allowZero = try a.int("allowzero", default: 0) != 0 }

    func forward(_ inputs: [Tensor?], _ pass: Pass) throws -> [Tensor] {
        let x = try required(inputs, 0, "data")
        var shape = integers(try required(inputs, 1, "shape"))
        for i in shape.indices where shape[i] == 0 && !allowZero {
            guard i < x.rank else { throw EngineError("shape \(shape) copies axis \(i) of a rank-\(x.rank) input") }
            shape[i] = x.shape[i]
        }
        if let k = shape.firstIndex(of: -1) {
            let known = shape.enumerated().filter { $0.offset != k }.reduce(1) { $0 * $1.element }
            guard known > 0, x.count % known == 0 else { throw EngineError("cannot reshape \(x.shape) to \(shape)") }
            shape[k] = x.count / known
        }
        guard shape.allSatisfy({ $0 >= 0 }), shape.elementCount == x.count else {
            throw EngineError("cannot reshape \(x.shape) (\(x.count) elements) to \(shape)")
        }
        return [x.reshaped(shape)]
    }

    func backward(inputs: [Tensor?], outputs: [Tensor], gradOutputs: [Tensor?], _ pass: Pass) throws -> [Tensor?] {
        [gradOutputs[0]?.reshaped(try required(inputs, 0, "data").shape), nil]
    }
}

/// ONNX `Transpose` (default: reverse the axes).
struct TransposeOp: Operator {
    let perm: [Int]?
    init(_ a: Attributes) throws { perm = try a.ints("perm") }

    func permutation(_ rank: Int) throws -> [Int] {
        let p = perm ?? Array((0..<rank).reversed())
        guard p.count == rank, Set(p) == Set(0..<rank) else { throw EngineError("perm \(p) is not a permutation of \(rank) axes") }
        return p
    }

    func forward(_ inputs: [Tensor?], _ pass: Pass) throws -> [Tensor] {
        let x = try required(inputs, 0, "data")
        return [Layout.transpose(x, perm: try permutation(x.rank))]
    }

    func backward(inputs: [Tensor?], outputs: [Tensor], gradOutputs: [Tensor?], _ pass: Pass) throws -> [Tensor?] {
        guard let dy = gradOutputs[0] else { return [nil] }
        return [Layout.transpose(dy, perm: Layout.inverse(try permutation(dy.rank)))]
    }
}

/// ONNX `Squeeze` and `Unsqueeze`: axes as an attribute (opset < 13) or an input (opset ≥ 13).
struct SqueezeOp: Operator {
    let unsqueeze: Bool
    let attributeAxes: [Int]?
    init(_ a: Attributes, unsqueeze: Bool) throws {
        self.unsqueeze = unsqueeze
        attributeAxes = a.opset < 13 ? try a.ints("axes") : nil
    }

    func forward(_ inputs: [Tensor?], _ pass: Pass) throws -> [Tensor] {
        let x = try required(inputs, 0, "data")
        let axes = attributeAxes ?? (inputs.count > 1 ? inputs[1].map(integers) : nil)
        if unsqueeze {
            guard let axes else { throw EngineError("axes are required") }
            let rank = x.rank + axes.count
            let normalized = Set(try axes.map { try normalizeAxis($0, rank: rank) })
            guard normalized.count == axes.count else { throw EngineError("axes \(axes) repeat an axis") }
            var shape: [Int] = []
            var it = x.shape.makeIterator()
            for i in 0..<rank { shape.append(normalized.contains(i) ? 1 : it.next()!) }
            return [x.reshaped(shape)]
        }
        let drop = try axes.map { Set(try $0.map { try normalizeAxis($0, rank: x.rank) }) } ?? Set(x.shape.indices.filter { x.shape[$0] == 1 })
        for a in drop where x.shape[a] != 1 { throw EngineError("cannot squeeze axis \(a) of extent \(x.shape[a])") }
        return [x.reshaped(x.shape.indices.filter { !drop.contains($0) }.map { x.shape[$0] })]
    }

    func backward(inputs: [Tensor?], outputs: [Tensor], gradOutputs: [Tensor?], _ pass: Pass) throws -> [Tensor?] {
        [gradOutputs[0]?.reshaped(try required(inputs, 0, "data").shape), nil]
    }
}

/// ONNX `Concat` along `axis`.
struct ConcatOp: Operator {
    let axis: Int
    init(_ a: Attributes) throws {
        guard case .int(let v)? = a.values["axis"] else { throw EngineError("axis is required") }
        axis = v
    }

    func forward(_ inputs: [Tensor?], _ pass: Pass) throws -> [Tensor] {
        let parts = inputs.compactMap { $0 }
        guard let first = parts.first else { throw EngineError("needs at least one input") }
        return [try Layout.concat(parts, axis: try normalizeAxis(axis, rank: first.rank))]
    }

    func backward(inputs: [Tensor?], outputs: [Tensor], gradOutputs: [Tensor?], _ pass: Pass) throws -> [Tensor?] {
        guard let dy = gradOutputs[0] else { return inputs.map { _ in nil } }
        let a = try normalizeAxis(axis, rank: dy.rank)
        let pieces = try Layout.split(dy, axis: a, sizes: inputs.compactMap { $0?.shape[a] })
        var it = pieces.makeIterator()
        return inputs.map { $0 == nil ? nil : it.next() }
    }
}

/// ONNX `Split`: sizes from the `split` attribute (opset < 13), the second input (opset ≥ 13),
/// `num_outputs` (opset ≥ 18, last piece smaller), or equal parts for each output.
struct SplitOp: Operator {
    let axis: Int
    let attributeSizes: [Int]?
    let outputs: Int

    init(_ a: Attributes) throws {
        axis = try a.int("axis", default: 0)
        attributeSizes = a.opset < 13 ? try a.ints("split") : nil
        outputs = try a.int("num_outputs", default: a.outputCount)
    }

    func sizes(_ inputs: [Tensor?], extent: Int) throws -> [Int] {
        if let s = attributeSizes ?? (inputs.count > 1 ? inputs[1].map(integers) : nil) { return s }
        let chunk = (extent + outputs - 1) / outputs
        return (0..<outputs).map { max(0, min(chunk, extent - $0 * chunk)) }
    }

    func forward(_ inputs: [Tensor?], _ pass: Pass) throws -> [Tensor] {
        let x = try required(inputs, 0, "input")
        let a = try normalizeAxis(axis, rank: x.rank)
        return try Layout.split(x, axis: a, sizes: try sizes(inputs, extent: x.shape[a]))
    }

    func backward(inputs: [Tensor?], outputs: [Tensor], gradOutputs: [Tensor?], _ pass: Pass) throws -> [Tensor?] {
        let x = try required(inputs, 0, "input")
        let a = try normalizeAxis(axis, rank: x.rank)
        let parts = zip(outputs, gradOutputs).map { $1 ?? Tensor(shape: $0.shape) }
        return [try Layout.concat(parts, axis: a), nil]
    }
}

/// ONNX `Slice`: starts/ends/axes as attributes (opset < 10) or inputs with optional steps.
struct SliceOp: Operator {
    let attributes: (starts: [Int], ends: [Int], axes: [Int]?)?

    init(_ a: Attributes) throws {
        if a.opset < 10 {
            guard let s = try a.ints("starts"), let e = try a.ints("ends") else { throw EngineError("starts and ends are required") }
            attributes = (s, e, try a.ints("axes"))
        } else {
            attributes = nil
        }
    }

    /// Clamped start, step and count for every axis of `shape` (ONNX's clamping rules).
    func plan(_ inputs: [Tensor?], shape: [Int]) throws -> (starts: [Int], steps: [Int], counts: [Int]) {
        let starts: [Int], ends: [Int], axesIn: [Int]?, stepsIn: [Int]?
        if let attributes {
            (starts, ends, axesIn, stepsIn) = (attributes.starts, attributes.ends, attributes.axes, nil)
        } else {
            starts = integers(try required(inputs, 1, "starts"))
            ends = integers(try required(inputs, 2, "ends"))
            axesIn = inputs.count > 3 ? inputs[3].map(integers) : nil
            stepsIn = inputs.count > 4 ? inputs[4].map(integers) : nil
        }
        let axes = try (axesIn ?? Array(0..<starts.count)).map { try normalizeAxis($0, rank: shape.count) }
        var s = [Int](repeating: 0, count: shape.count), st = [Int](repeating: 1, count: shape.count), c = shape
        for (k, a) in axes.enumerated() {
            let step = stepsIn?[k] ?? 1
            guard step != 0 else { throw EngineError("slice step must not be 0") }
            let dim = shape[a]
            func norm(_ v: Int) -> Int { v < 0 ? (v == Int.min ? Int.min : v + dim) : v }
            var start = norm(starts[k]), end = norm(ends[k])
            if step > 0 {
                start = min(max(start, 0), dim)
                end = min(max(end, 0), dim)
                c[a] = max(0, (end - start + step - 1) / step)
            } else {
                start = min(max(start, 0), dim - 1)
                end = min(max(end, -1), dim - 1)
                c[a] = max(0, (start - end + (-step) - 1) / (-step))
            }
            s[a] = start
            st[a] = step
        }
        return (s, st, c)
    }

    func forward(_ inputs: [Tensor?], _ pass: Pass) throws -> [Tensor] {
        let x = try required(inputs, 0, "data")
        let p = try plan(inputs, shape: x.shape)
        return [Layout.slice(x, starts: p.starts, steps: p.steps, counts: p.counts)]
    }

    func backward(inputs: [Tensor?], outputs: [Tensor], gradOutputs: [Tensor?], _ pass: Pass) throws -> [Tensor?] {
        guard let dy = gradOutputs[0] else { return inputs.map { _ in nil } }
        let x = try required(inputs, 0, "data")
        let p = try plan(inputs, shape: x.shape)
        return [Layout.sliceBackward(dy, inputShape: x.shape, starts: p.starts, steps: p.steps)]
            + Array(repeating: nil, count: inputs.count - 1)
    }
}

/// ONNX `Gather` along `axis`.
struct GatherOp: Operator {
    let axis: Int
    init(_ a: Attributes) throws { axis = try a.int("axis", default: 0) }

    func forward(_ inputs: [Tensor?], _ pass: Pass) throws -> [Tensor] {
        let x = try required(inputs, 0, "data")
        return [try Layout.gather(x, indices: try required(inputs, 1, "indices"), axis: try normalizeAxis(axis, rank: x.rank))]
    }

    func backward(inputs: [Tensor?], outputs: [Tensor], gradOutputs: [Tensor?], _ pass: Pass) throws -> [Tensor?] {
        guard let dy = gradOutputs[0] else { return [nil, nil] }
        let x = try required(inputs, 0, "data")
        return [Layout.gatherBackward(dy, indices: try required(inputs, 1, "indices"), inputShape: x.shape,
                                      axis: try normalizeAxis(axis, rank: x.rank)), nil]
    }
}

/// ONNX `Shape`, with `start`/`end` (opset 15).
struct ShapeOp: Operator {
    let start: Int, end: Int?
    init(_ a: Attributes) throws {
        start = try a.int("start", default: 0)
        end = a.values["end"] == nil ? nil : try a.int("end", default: 0)
    }

    func forward(_ inputs: [Tensor?], _ pass: Pass) throws -> [Tensor] {
        let x = try required(inputs, 0, "data")
        let r = x.rank
        func clamp(_ v: Int) -> Int { min(max(v < 0 ? v + r : v, 0), r) }
        let s = clamp(start), e = clamp(end ?? r)
        let dims = s < e ? Array(x.shape[s..<e]) : []
        return [Tensor(shape: [dims.count], data: dims.map(Float.init))]
    }

    func backward(inputs: [Tensor?], outputs: [Tensor], gradOutputs: [Tensor?], _ pass: Pass) throws -> [Tensor?] { [nil] }
}

/// ONNX `ConstantOfShape`: a tensor of the given shape filled with `value` (default 0).
struct ConstantOfShapeOp: Operator {
    let value: Float
    init(_ a: Attributes) throws { value = try a.tensor("value")?.data.first ?? 0 }

    func forward(_ inputs: [Tensor?], _ pass: Pass) throws -> [Tensor] {
        let shape = integers(try required(inputs, 0, "input"))
        guard shape.allSatisfy({ $0 >= 0 }) else { throw EngineError("negative extent in shape \(shape)") }
        try Limits.checkShape(shape, "ConstantOfShape")
        return [Tensor(shape: shape, repeating: value)]
    }

    func backward(inputs: [Tensor?], outputs: [Tensor], gradOutputs: [Tensor?], _ pass: Pass) throws -> [Tensor?] { [nil] }
}

/// ONNX `Cast`. Values stay Float32; the conversion applies the target type's rounding
/// (float16, bfloat16, integer truncation with wrap-around, bool).
struct CastOp: Operator {
    let convert: @Sendable (Float) -> Float
    let differentiable: Bool

    init(_ a: Attributes) throws {
        let to = try a.int("to", default: 0)
        func wrap(_ bits: Int, signed: Bool) -> @Sendable (Float) -> Float {
            { v in
                guard v.isFinite else { return 0 }
                let t = Int64(v.rounded(.towardZero))
                let m = Int64(1) << bits
                var r = ((t % m) + m) % m
                if signed && r >= m / 2 { r -= m }
                return Float(r)
            }
        }
        differentiable = [1, 10, 11, 16].contains(to)
        switch to {
        case 1, 11: convert = { $0 }
        case 10: convert = { Float(Float16($0)) }
        case 16: convert = { v in
            // bfloat16: keep the upper 16 bits, rounding to nearest even.
            guard v.isFinite else { return v }
            let b = v.bitPattern
            let rounded = (b &+ 0x7FFF &+ ((b >> 16) & 1)) & 0xFFFF_0000
            return Float(bitPattern: rounded)
        }
        case 9: convert = { $0 != 0 ? 1 : 0 }
        case 2: convert = wrap(8, signed: false)
        case 3: convert = wrap(8, signed: true)
        case 4: convert = wrap(16, signed: false)
        case 5: convert = wrap(16, signed: true)
        case 6: convert = wrap(32, signed: true)
        case 12: convert = wrap(32, signed: false)
        case 7, 13: convert = { $0.isFinite ? $0.rounded(.towardZero) : 0 }
        default: throw EngineError("cast to ONNX type \(to) is not supported (Candela computes in float32)").unsupported()
        }
    }

    func forward(_ inputs: [Tensor?], _ pass: Pass) throws -> [Tensor] {
        let x = try required(inputs, 0, "input")
        return [Tensor(shape: x.shape, data: x.data.map(convert))]
    }

    func backward(inputs: [Tensor?], outputs: [Tensor], gradOutputs: [Tensor?], _ pass: Pass) throws -> [Tensor?] {
        [differentiable ? gradOutputs[0] : nil]
    }
}

/// ONNX `Expand`: bidirectional broadcast of the input to a shape.
struct ExpandOp: Operator {
    func forward(_ inputs: [Tensor?], _ pass: Pass) throws -> [Tensor] {
        let x = try required(inputs, 0, "input")
        let shape = try Elementwise.broadcastShape(x.shape, integers(try required(inputs, 1, "shape")))
        try Limits.checkShape(shape, "Expand")
        return [try Elementwise.binary(x, Tensor(shape: shape), { v, _ in v })]
    }

    func backward(inputs: [Tensor?], outputs: [Tensor], gradOutputs: [Tensor?], _ pass: Pass) throws -> [Tensor?] {
        guard let dy = gradOutputs[0] else { return [nil, nil] }
        return [Elementwise.sumToShape(dy, try required(inputs, 0, "input").shape), nil]
    }
}

/// ONNX `Pad`: constant, reflect, edge (and wrap, opset 19); attributes before opset 11,
/// inputs pads, constant_value and axes (opset 18) after.
struct PadOp: Operator {
    let mode: Layout.PadMode
    let attributePads: [Int]?
    let attributeValue: Float

    init(_ a: Attributes) throws {
        let m = try a.string("mode", default: "constant")
        guard let mode = Layout.PadMode(rawValue: m) else { throw EngineError("unknown pad mode '\(m)'") }
        self.mode = mode
        attributePads = a.opset < 11 ? (try a.ints("pads") ?? a.ints("paddings")) : nil
        attributeValue = try a.float("value", default: 0)
    }

    func pads(_ inputs: [Tensor?], rank: Int) throws -> [Int] {
        if let attributePads { return attributePads }
        let p = integers(try required(inputs, 1, "pads"))
        guard inputs.count > 3, let axesTensor = inputs[3] else {
            guard p.count == 2 * rank else { throw EngineError("pads has \(p.count) values for rank \(rank)") }
            return p
        }
        let axes = try integers(axesTensor).map { try normalizeAxis($0, rank: rank) }
        guard p.count == 2 * axes.count else { throw EngineError("pads has \(p.count) values for \(axes.count) axes") }
        var full = [Int](repeating: 0, count: 2 * rank)
        for (k, a) in axes.enumerated() { full[a] = p[k]; full[a + rank] = p[k + axes.count] }
        return full
    }

    func forward(_ inputs: [Tensor?], _ pass: Pass) throws -> [Tensor] {
        let x = try required(inputs, 0, "data")
        let value = attributePads != nil ? attributeValue : (inputs.count > 2 ? inputs[2]?.data.first ?? 0 : 0)
        let p = try pads(inputs, rank: x.rank)
        // The padded shape, checked before allocating (pads come from the graph's values).
        guard p.allSatisfy({ abs($0) <= 1 << 30 }) else { throw EngineError("pads \(p) has an entry beyond ±2^30") }
        try Limits.checkShape(x.shape.indices.map { x.shape[$0] + p[$0] + p[$0 + x.rank] }, "Pad")
        return [try Layout.pad(x, pads: p, mode: mode, value: value)]
    }

    func backward(inputs: [Tensor?], outputs: [Tensor], gradOutputs: [Tensor?], _ pass: Pass) throws -> [Tensor?] {
        guard let dy = gradOutputs[0] else { return inputs.map { _ in nil } }
        let x = try required(inputs, 0, "data")
        return [Layout.padBackward(dy, inputShape: x.shape, pads: try pads(inputs, rank: x.rank), mode: mode)]
            + Array(repeating: nil, count: inputs.count - 1)
    }
}

/// ONNX `Dropout` in inference: the identity, and an all-true mask when asked for one.
struct DropoutOp: Operator {
    let wantsMask: Bool
    init(_ a: Attributes) throws { wantsMask = a.outputCount > 1 }

    func forward(_ inputs: [Tensor?], _ pass: Pass) throws -> [Tensor] {
        let x = try required(inputs, 0, "data")
        if inputs.count > 2, let training = inputs[2], training.data.first ?? 0 != 0 {
            let ratio = inputs[1]?.data.first ?? 0.5
            if ratio != 0 { throw EngineError("training_mode=true is not supported: Candela runs models in inference").unsupported() }
        }
        return wantsMask ? [x, Tensor(shape: x.shape, repeating: 1)] : [x]
    }

    func backward(inputs: [Tensor?], outputs: [Tensor], gradOutputs: [Tensor?], _ pass: Pass) throws -> [Tensor?] {
        [gradOutputs[0]] + Array(repeating: nil, count: inputs.count - 1)
    }
}
