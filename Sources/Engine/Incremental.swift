import Foundation
import Tensors

/// A batch of inputs that each differ from one clean input inside a rectangle: item b is the
/// clean input (1,C,H,W) with rows ys[b] ..< ys[b]+h and columns xs[b] ..< xs[b]+w (all
/// channels) replaced by values[b]. Every rectangle has the same size and lies inside the plane.
public struct InputPatches: Sendable {
    /// (B,C,h,w)
    public let values: Tensor
    public let ys: [Int]
    public let xs: [Int]

    public init(values: Tensor, ys: [Int], xs: [Int]) {
        self.values = values
        self.ys = ys
        self.xs = xs
    }
}

/// Incremental inference (Nakandala, Kumar & Papakonstantinou, "Incremental and approximate
/// inference for faster occlusion-based deep CNN explanations", SIGMOD 2019, §3): when inputs
/// differ from a clean input only inside a rectangle, each layer recomputes only the outputs
/// whose receptive field meets the changed region, reading everything else from the clean pass.
///
/// The changed region of each tensor is a rectangle of one size for the whole batch, each item
/// at its own origin (`Region`); the values outside it are the clean pass's. How a region moves
/// through a node:
/// - **window operators** (2-D Conv, MaxPool, AveragePool): output rows o with
///   o·s − p ≤ a+n−1 and o·s − p + (k−1)·d ≥ a change (eq. 3–4 of the paper, per axis); the node
///   runs without padding on the input rows those outputs read, gathered from the clean value
///   with the changed rectangle written over it and padding filled in (0; −∞ for max pooling);
/// - **position-wise operators** (activations, BatchNormalization, arithmetic, channel Concat):
///   the union of the inputs' rectangles, computed on that window alone;
/// - **anything else** (global pooling, Flatten, Gemm, ...): the whole batch, as an ordinary
///   batched pass. Once a rectangle covers its whole plane the value is such a batch too.
///
/// The result equals the batched forward pass of the B full inputs up to the order of float
/// summation (every element is computed by the same operator and weights); only the work differs.
/// This is exact incremental inference: the paper's approximate variants (projective-field
/// thresholding, adaptive drill-down) change the result and are not used.
extension Model {
    /// The graph outputs for the B patched inputs, each (B,...), from `clean`, a pass that kept
    /// every tensor (`run(_:keepAll: true)`) of the clean input with batch 1.
    public func incrementalOutputs(clean pass: ForwardPass, patches: InputPatches) throws -> [Tensor] {
        let run = try incrementalPass(clean: pass, patches: patches)
        return try pass.graph.outputs.map { try run.batched($0) }
    }

    /// The pass itself: the state of every tensor the patches reach.
    func incrementalPass(clean pass: ForwardPass, patches: InputPatches) throws -> Incremental {
        let g = pass.graph
        guard g.inputs.count == 1, let x = pass.values[g.inputs[0].name], x.rank == 4, x.shape[0] == 1 else {
            throw EngineError("\(path): incremental inference needs one (1,C,H,W) graph input")
        }
        let v = patches.values, b = patches.ys.count
        guard v.rank == 4, v.shape[0] == b, patches.xs.count == b, b > 0, v.shape[1] == x.shape[1] else {
            throw EngineError("\(path): patches \(v.shape) do not fit the input \(x.shape) (\(b) origins)")
        }
        let region = Incremental.Region(ys: patches.ys, xs: patches.xs, h: v.shape[2], w: v.shape[3])
        for i in 0..<b where region.ys[i] < 0 || region.xs[i] < 0
            || region.ys[i] + region.h > x.shape[2] || region.xs[i] + region.w > x.shape[3] {
            throw EngineError("\(path): patch \(i) at (\(region.ys[i]), \(region.xs[i])) of size \(region.h)×\(region.w) leaves the input plane \(x.shape[2])×\(x.shape[3])")
        }
        var run = Incremental(pass: pass, batch: b, kernels: kernels)
        run.state[g.inputs[0].name] = Incremental.normalized(.patched(v, region), plane: (x.shape[2], x.shape[3]))
        // Each changed tensor is dropped after its last reader, as in an inference pass.
        let frees = Model.lastUses(g), keep = Set(g.outputs)
        for (index, node) in g.nodes.enumerated() where node.inputs.contains(where: { run.state[$0] != nil }) {
            defer { for name in frees[index] where !keep.contains(name) { run.state[name] = nil } }
            let outs: [Incremental.Value]
            do {
                outs = try run.step(node)
            } catch let e as EngineError {
                throw e.prefixed("\(path): node '\(node.name)' (\(node.opType)), incremental: ")
            } catch let e as TensorError {
                throw EngineError("\(path): \(EngineError.node(node, e.description)) (incremental)")
            }
            for (name, value) in zip(node.outputs, outs) where !name.isEmpty {
                run.state[name] = value
                if case .patched = value { run.windowed.insert(name) }
            }
        }
        return run
    }
}

/// The state of one incremental pass (see `Model.incrementalOutputs`).
struct Incremental {
    /// Per item, the origin of a rectangle of one size h × w in a plane (rows, columns).
    struct Region: Equatable {
        var ys: [Int]
        var xs: [Int]
        var h: Int
        var w: Int
    }

    /// A tensor of the batch: clean (absent from `state`), changed inside a region, or whole.
    enum Value {
        /// (B,C,h,w): the values inside each item's rectangle; the clean value elsewhere.
        case patched(Tensor, Region)
        /// (B,...): every value.
        case batched(Tensor)
    }

    let pass: ForwardPass
    let batch: Int
    /// The model's kernels (`Model.kernels`); every step runs as an inference pass.
    let kernels: KernelOptions
    var state: [String: Value] = [:]
    /// The tensors computed on windows (the others the patches reached were computed whole).
    var windowed: Set<String> = []

    init(pass: ForwardPass, batch: Int, kernels: KernelOptions) {
        self.pass = pass
        self.batch = batch
        self.kernels = kernels
    }

    /// Operators whose every output element depends only on input elements at the same
    /// (n, h, w) position (the channel may differ: BatchNormalization, channel Concat).
    static let positionWise: Set<String> = Set(Activations.table.keys).union(BinaryOp.table.keys)
        .union(["Sum", "Max", "Min", "PRelu", "BatchNormalization", "Identity", "Dropout", "Concat"])

    func clean(_ name: String) throws -> Tensor {
        guard let t = pass.values[name] else {
            throw EngineError("the clean pass did not keep tensor '\(name)' (run it with keepAll: true)")
        }
        return t
    }

    /// A patched value whose rectangle covers the plane is the whole batch.
    static func normalized(_ v: Value, plane: (h: Int, w: Int)) -> Value {
        if case .patched(let t, let r) = v, r.h == plane.h, r.w == plane.w { return .batched(t) }
        return v
    }

    /// The outputs of one node whose inputs are not all clean.
    func step(_ node: Node) throws -> [Value] {
        let states = node.inputs.map { $0.isEmpty ? nil : state[$0] }
        let anyBatched = states.contains { if case .batched? = $0 { return true } else { return false } }
        if !anyBatched && node.outputs.count == 1 {
            if let v = try windowStep(node, states) { return [v] }
            if let v = try positionStep(node, states) { return [v] }
        }
        return try batchedStep(node)
    }

    /// The whole batch at `name`.
    func batched(_ name: String) throws -> Tensor {
        let c = try clean(name)
        switch state[name] {
        case .batched(let t)?: return t
        case .patched(let t, let r)?:
            return Incremental.gather(clean: c, patch: (t, r), target: fullRegion(c), fill: 0)
        case nil:
            var data: [Float] = []
            data.reserveCapacity(c.count * batch)
            for _ in 0..<batch { data.append(contentsOf: c.data) }
            return Tensor(shape: [batch] + c.shape.dropFirst(), data: data)
        }
    }

    func fullRegion(_ c: Tensor) -> Region {
        Region(ys: Array(repeating: 0, count: batch), xs: Array(repeating: 0, count: batch), h: c.shape[2], w: c.shape[3])
    }

    /// Any node, run on whole batches (clean inputs are constants: every tensor that depends on
    /// the graph input has a state).
    func batchedStep(_ node: Node) throws -> [Value] {
        let args: [Tensor?] = try node.inputs.map { name in
            if name.isEmpty { return nil }
            return state[name] == nil ? try clean(name) : try batched(name)
        }
        return try node.op.forward(args, Pass(kernels: kernels, inference: true)).map { .batched($0) }
    }

    /// 2-D Conv, MaxPool and AveragePool on a patched input: recompute the reached outputs only.
    func windowStep(_ node: Node, _ states: [Value?]) throws -> Value? {
        guard case .patched(let xp, let region)? = states.first, states.dropFirst().allSatisfy({ $0 == nil }) else { return nil }
        let x = try clean(node.inputs[0]), y = try clean(node.outputs[0])
        guard x.rank == 4, y.rank == 4 else { return nil }
        switch node.op {
        case let conv as ConvOp:
            let w = try clean(node.inputs[1])
            let b = node.inputs.count > 2 && !node.inputs[2].isEmpty ? try clean(node.inputs[2]) : nil
            let p = try conv.plan(x: x, w: w)
            let g = p.geometry
            var unpadded = g
            unpadded.pads = (0, 0, 0, 0)
            return try slide(x: x, patch: (xp, region), y: y, kernel: [g.kernel.h, g.kernel.w], strides: [g.strides.h, g.strides.w],
                             dilations: [g.dilations.h, g.dilations.w], pads: [g.pads.top, g.pads.left], fill: 0) {
                try Conv2D.forward(x: $0, w: p.w, b: b, geometry: unpadded, activation: conv.activation, cache: conv.packedWeights,
                                   inference: true, kernels: kernels)
            }
        case let pool as MaxPoolOp where !pool.wantsIndices:
            return try poolStep(pool.attributes.geometry(x), kind: .max, fill: -.infinity, x: x, patch: (xp, region), y: y)
        case let pool as AveragePoolOp:
            let g = try pool.attributes.geometry(x)
            // Zero fill is the padding only when padded positions count (and ceil mode adds no
            // window past the padding), or when there is no padding at all.
            guard case .average(let countPad) = pool.kind, !g.ceilMode, countPad || g.pads.allSatisfy({ $0 == 0 }) else { return nil }
            return try poolStep(g, kind: pool.kind, fill: 0, x: x, patch: (xp, region), y: y)
        default:
            return nil
        }
    }

    func poolStep(_ g: PoolGeometry, kind: Pool.Kind, fill: Float, x: Tensor, patch: (Tensor, Region), y: Tensor) throws -> Value? {
        guard g.kernel.count == 2 else { return nil }
        let unpadded = PoolGeometry(kernel: g.kernel, strides: g.strides, pads: [0, 0, 0, 0], dilations: g.dilations)
        return try slide(x: x, patch: patch, y: y, kernel: g.kernel, strides: g.strides, dilations: g.dilations,
                         pads: [g.pads[0], g.pads[1]], fill: fill) {
            try Pool.forward(x: $0, geometry: unpadded, kind: kind, argmax: false, kernels: kernels).y
        }
    }

    /// A window operator (2-D; per axis kernel, stride, dilation, leading pad) on a patched input:
    /// the outputs the change reaches, computed by `unpadded` (the operator without padding) on
    /// the input rows and columns they read, with `fill` where those lie in the padding.
    func slide(x: Tensor, patch: (Tensor, Region), y: Tensor, kernel: [Int], strides: [Int], dilations: [Int], pads: [Int],
               fill: Float, _ unpadded: (Tensor) throws -> Tensor) throws -> Value {
        let plane = (h: y.shape[2], w: y.shape[3]), region = patch.1
        let rows = Incremental.reach(region.ys, size: region.h, extent: plane.h, kernel: kernel[0],
                                     stride: strides[0], dilation: dilations[0], pad: pads[0])
        let cols = Incremental.reach(region.xs, size: region.w, extent: plane.w, kernel: kernel[1],
                                     stride: strides[1], dilation: dilations[1], pad: pads[1])
        let read = Region(ys: rows.read, xs: cols.read, h: rows.readSize, w: cols.readSize)
        let out = try unpadded(Incremental.gather(clean: x, patch: patch, target: read, fill: fill))
        return try patched(out, Region(ys: rows.out, xs: cols.out, h: rows.size, w: cols.size), plane: plane, channels: y.shape[1])
    }

    func patched(_ out: Tensor, _ r: Region, plane: (h: Int, w: Int), channels: Int) throws -> Value {
        guard out.shape == [batch, channels, r.h, r.w] else {
            throw EngineError("computed a window of shape \(out.shape), expected \([batch, channels, r.h, r.w])")
        }
        return Incremental.normalized(.patched(out, r), plane: plane)
    }

    /// A position-wise node on patched inputs: computed over the union of their rectangles.
    /// Clean inputs must be constant across positions (a per-channel scale, a scalar) or be full
    /// planes of the same size (gathered over the union); otherwise the node runs batched.
    func positionStep(_ node: Node, _ states: [Value?]) throws -> Value? {
        guard Incremental.positionWise.contains(node.opType) else { return nil }
        if let concat = node.op as? ConcatOp, !(concat.axis == 1 || concat.axis == -3) { return nil }
        if let bn = node.op as? BatchNormalizationOp, bn.training { return nil }
        if node.opType == "Dropout", node.inputs.count > 2, !node.inputs[2].isEmpty { return nil }
        var patches: [(Tensor, Region)] = []
        var plane: (h: Int, w: Int)?
        for (name, s) in zip(node.inputs, states) {
            guard case .patched(let t, let r)? = s else { continue }
            let c = try clean(name)
            if let p = plane, p != (c.shape[2], c.shape[3]) { return nil }
            plane = (c.shape[2], c.shape[3])
            patches.append((t, r))
        }
        guard let plane else { return nil }
        var ys: [Int] = [], xs: [Int] = [], h = 0, w = 0
        var spans: [(y0: Int, y1: Int, x0: Int, x1: Int)] = []
        for i in 0..<batch {
            let y0 = patches.map { $0.1.ys[i] }.min()!, y1 = patches.map { $0.1.ys[i] + $0.1.h }.max()!
            let x0 = patches.map { $0.1.xs[i] }.min()!, x1 = patches.map { $0.1.xs[i] + $0.1.w }.max()!
            spans.append((y0, y1, x0, x1))
            h = max(h, y1 - y0)
            w = max(w, x1 - x0)
        }
        for s in spans {
            ys.append(min(s.y0, plane.h - h))
            xs.append(min(s.x0, plane.w - w))
        }
        let union = Region(ys: ys, xs: xs, h: h, w: w)
        var args: [Tensor?] = []
        let perChannel = node.op is BatchNormalizationOp // scale, bias, mean, variance: (C), by channel
        for (index, (name, s)) in zip(node.inputs, states).enumerated() {
            if name.isEmpty { args.append(nil); continue }
            let c = try clean(name)
            switch s {
            case .patched(let t, let r)?:
                args.append(Incremental.gather(clean: c, patch: (t, r), target: union, fill: 0))
            case .batched?:
                return nil
            case nil:
                let aligned = Array(repeating: 1, count: max(0, 4 - c.rank)) + c.shape
                if (aligned.count == 4 && aligned[2] == 1 && aligned[3] == 1) || (perChannel && index > 0) {
                    args.append(c)
                } else if c.rank == 4, c.shape[0] == 1, c.shape[2] == plane.h, c.shape[3] == plane.w {
                    args.append(Incremental.gather(clean: c, patch: nil, target: union, fill: 0))
                } else {
                    return nil
                }
            }
        }
        let out = try node.op.forward(args, Pass(kernels: kernels, inference: true))[0]
        let y = try clean(node.outputs[0])
        guard y.rank == 4, y.shape[2] == plane.h, y.shape[3] == plane.w else { return nil }
        return try patched(out, union, plane: plane, channels: y.shape[1])
    }

    /// Along one axis of a window operator (kernel k, stride s, dilation d, leading pad p, output
    /// extent `extent`): the outputs a change at input positions [a, a+n) reaches, one span of
    /// `size` for every item, moved inward where it would leave the plane, and the input
    /// positions [read, read+readSize) those outputs read (possibly in the padding).
    static func reach(_ origins: [Int], size n: Int, extent: Int, kernel k: Int, stride s: Int, dilation d: Int,
                      pad p: Int) -> (out: [Int], size: Int, read: [Int], readSize: Int) {
        let span = (k - 1) * d
        var lo: [Int] = [], size = 1
        for a in origins {
            // o·s − p + span ≥ a  and  o·s − p ≤ a + n − 1
            let first = max(0, ceilDiv(a + p - span, s)), last = min(extent - 1, floorDiv(a + n - 1 + p, s))
            lo.append(first)
            size = max(size, last - first + 1)
        }
        size = min(size, extent)
        let out = lo.map { min($0, extent - size) }
        return (out, size, out.map { $0 * s - p }, (size - 1) * s + span + 1)
    }

    static func floorDiv(_ a: Int, _ b: Int) -> Int { a >= 0 ? a / b : -((-a + b - 1) / b) }
    static func ceilDiv(_ a: Int, _ b: Int) -> Int { -floorDiv(-a, b) }

    /// The values of `clean` (1,C,H,W), with `patch` written over it, read over each item's
    /// rectangle of `target`: (B,C,h,w). Positions outside the plane read `fill`.
    static func gather(clean: Tensor, patch: (Tensor, Region)?, target: Region, fill: Float) -> Tensor {
        let (channels, height, width) = (clean.shape[1], clean.shape[2], clean.shape[3])
        let (h, w) = (target.h, target.w)
        let items = target.ys.count
        var out = Tensor(uninitializedShape: [items, channels, h, w])
        clean.data.withUnsafeBufferPointer { cleanBuffer in
            out.data.withUnsafeMutableBufferPointer { outBuffer in
                let src = cleanBuffer.baseAddress!, dst = outBuffer.baseAddress!
                for b in 0..<items {
                    let (ty, tx) = (target.ys[b], target.xs[b])
                    let c0 = max(0, tx), c1 = min(width, tx + w)
                    for c in 0..<channels {
                        for r in 0..<h {
                            let row = dst + ((b * channels + c) * h + r) * w
                            let yy = ty + r
                            guard yy >= 0, yy < height, c0 < c1 else { row.update(repeating: fill, count: w); continue }
                            if c0 > tx { row.update(repeating: fill, count: c0 - tx) }
                            (row + (c0 - tx)).update(from: src + (c * height + yy) * width + c0, count: c1 - c0)
                            if tx + w > c1 { (row + (c1 - tx)).update(repeating: fill, count: tx + w - c1) }
                        }
                    }
                }
            }
        }
        guard let (values, r) = patch else { return out }
        values.data.withUnsafeBufferPointer { patchBuffer in
            out.data.withUnsafeMutableBufferPointer { outBuffer in
                let src = patchBuffer.baseAddress!, dst = outBuffer.baseAddress!
                for b in 0..<items {
                    let (ty, tx, py, px) = (target.ys[b], target.xs[b], r.ys[b], r.xs[b])
                    let r0 = max(ty, py), r1 = min(ty + h, py + r.h)
                    let q0 = max(tx, px), q1 = min(tx + w, px + r.w)
                    guard r0 < r1, q0 < q1 else { continue }
                    for c in 0..<channels {
                        for yy in r0..<r1 {
                            (dst + ((b * channels + c) * h + (yy - ty)) * w + (q0 - tx))
                                .update(from: src + ((b * channels + c) * r.h + (yy - py)) * r.w + (q0 - px), count: q1 - q0)
                        }
                    }
                }
            }
        }
        return out
    }
}
