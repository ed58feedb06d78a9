import Foundation
import Tensors

/// The values computed by one forward pass, by tensor name. A pass run for a backward pass
/// keeps every tensor (taps and the backward read them); an inference pass keeps only the
/// outputs and the requested taps.
public struct ForwardPass: Sendable {
    public let values: [String: Tensor]
    /// The graph outputs, in declaration order.
    public let outputs: [Tensor]
    /// Which of the model's graphs computed it (the optimized one unless a tap needed the original).
    let graph: Graph
    /// The tensors of `graph` that depend on a graph input: the only ones a gradient can reach.
    let reachable: Set<String>

    /// The activation at a named tensor; an error names the tensor when it does not exist.
    public func value(_ name: String) throws -> Tensor {
        guard let v = values[name] else { throw EngineError("no tensor named '\(name)' in the model") }
        return v
    }
}

/// A loaded ONNX model and its executor: forward with taps, backward (vector-Jacobian products).
///
/// The model keeps the graph as the file has it and a load-time optimized copy (see `Optimizer`).
/// Passes run on the optimized copy unless a requested tap exists only in the original.
/// Immutable after loading, so one `Model` may serve many threads at once.
public final class Model: Sendable {
    public let path: String
    /// The graph as the ONNX file describes it.
    public let graph: Graph
    /// The same computation after BatchNormalization folding and activation fusion.
    public let optimizedGraph: Graph
    let optimizedNames: Set<String>
    /// For each graph: the tensors whose value depends on a graph input (the only ones a gradient can reach).
    let dependsOnInput: Set<String>
    let optimizedDependsOnInput: Set<String>
    /// For each node of each graph: the tensors that node reads last (freed after it in inference passes).
    let lastUse: [[String]]
    let optimizedLastUse: [[String]]
    /// For each graph: the nodes whose outputs no max-selecting operator depends on
    /// (`selectionFree`), which run as in an inference pass in every pass.
    let selectionFree: Set<Int>
    let optimizedSelectionFree: Set<Int>
    /// Bytes of the file graph's constant tensors (weights, biases, statistics) as float32.
    public let parameterBytes: Int
    /// Bytes the weights of the optimized graph's Winograd-shaped convolutions (3×3, stride and
    /// dilation 1, one group, at least 16 input channels) add when they run in F(4×4, 3×3)'s
    /// transformed domain: 36 values for every 9 (`imagesPerChunk`).
    let winogradExtraBytes: Int
    /// Residual connections inference passes on the optimized graph fuse into a convolution's
    /// store, by the index of that Conv node (see `ResidualFusion`).
    let residualFusions: [Int: ResidualFusion]
    /// 1×1 expansions inference passes on the optimized graph run together with the depthwise
    /// convolution after them, by the index of the 1×1 Conv node (see `PointwiseDepthwiseFusion`).
    let pointwiseDepthwiseFusions: [Int: PointwiseDepthwiseFusion]
    /// Convolutions inference passes on the optimized graph run with the SiLU after them in their
    /// store, by the index of the Conv node (see `SiLUFusion`).
    let siluFusions: [Int: SiLUFusion]
    /// BatchNormalizations inference passes run with the ReLU after them (`BatchNormReluFusion`).
    let batchNormReluFusions: [Int: BatchNormReluFusion]
    /// Floats of node outputs one image produces in an inference pass, by per-image input shape
    /// (`imagesPerChunk`).
    let activationFloats = ShapeMemo()
    /// Inference passes compiled per input shape (`InferencePlan`).
    let plans = InferencePlan.Memo()

    /// The kernels every pass of this model runs (`KernelOptions`: the path and its variants),
    /// fixed when the model is built: the command line's `--kernel` and `--kernel-set`.
    public let kernels: KernelOptions

    /// How the model treats the batch extent of its input (`FreeBatch`).
    public enum Batch: Sendable, Equatable {
        /// The file leaves it free.
        case free
        /// The file fixes it; the graph was re-planned with a free batch (`reshapes` Reshape
        /// targets changed) and checked.
        case replanned(declared: Int, reshapes: Int)
        /// The file fixes it and re-planning failed for `reason`: only that batch runs.
        case fixed(declared: Int, reason: String)
    }

    /// How this model treats the batch extent (`FreeBatch`).
    public let batch: Batch

    /// Loads and checks an ONNX file; every operator must be supported. A graph whose batch
    /// extent is fixed is re-planned with a free batch where that is checked to be exact
    /// (`FreeBatch`). Every pass runs `kernels` (the fastest this CPU has unless said).
    public convenience init(path: String, optimize: Bool = true, kernels: KernelOptions = .best) throws {
        let (graph, dataFiles) = try ONNXImport.load(path: path)
        guard let relaxed = try? FreeBatch.relaxed(graph) else {
            try self.init(path: path, graph: graph, optimize: optimize, dataFiles: dataFiles, kernels: kernels)
            return
        }
        // The two models of the check are released before the kept one is built (each holds
        // its optimized copy of the weights).
        let reason: String? = try {
            let strict = try Model(path: path, graph: graph, optimize: optimize, kernels: kernels)
            let candidate = try Model(path: path, graph: relaxed.graph, optimize: optimize, kernels: kernels)
            return FreeBatch.verify(relaxed: candidate, strict: strict, batch: relaxed.batch)
        }()
        if let reason {
            try self.init(path: path, graph: graph, optimize: optimize, batch: .fixed(declared: relaxed.batch, reason: reason),
                          dataFiles: dataFiles, kernels: kernels)
        } else {
            try self.init(path: path, graph: relaxed.graph, optimize: optimize,
                          batch: .replanned(declared: relaxed.batch, reshapes: relaxed.reshapes), dataFiles: dataFiles,
                          kernels: kernels)
        }
    }

    /// The external data files the model's weights were read from (resolved paths, sorted):
    /// part of a run's cache key with the model file.
    public let dataFiles: [String]

    /// A model for an already-built graph (`path` names it in messages).
    init(path: String, graph: Graph, optimize: Bool = true, batch: Batch = .free, dataFiles: [String] = [],
         kernels: KernelOptions) throws {
        self.path = path
        self.kernels = kernels
        self.graph = graph
        self.batch = batch
        self.dataFiles = dataFiles
        do {
            self.optimizedGraph = optimize ? try Optimizer.optimize(graph) : graph
        } catch let e as EngineError {
            throw e.prefixed("\(path): while optimizing: ")
        }
        self.optimizedNames = Set(optimizedGraph.tensorNames)
        self.dependsOnInput = Model.forwardClosure(of: Set(graph.inputs.map(\.name)), in: graph)
        self.optimizedDependsOnInput = Model.forwardClosure(of: Set(optimizedGraph.inputs.map(\.name)), in: optimizedGraph)
        self.lastUse = Model.lastUses(graph)
        self.optimizedLastUse = Model.lastUses(optimizedGraph)
        self.selectionFree = Model.selectionFree(graph)
        self.optimizedSelectionFree = Model.selectionFree(optimizedGraph)
        self.parameterBytes = graph.initializers.values.reduce(0) { $0 + $1.count } * 4
        self.winogradExtraBytes = Model.winogradExtraBytes(optimizedGraph)
        self.residualFusions = ResidualFusion.find(in: optimizedGraph)
        self.siluFusions = SiLUFusion.find(in: optimizedGraph)
        self.batchNormReluFusions = BatchNormReluFusion.find(in: optimizedGraph)
        self.pointwiseDepthwiseFusions = PointwiseDepthwiseFusion.find(in: optimizedGraph, residualFusions: residualFusions,
                                                                       siluFusions: siluFusions)
    }

    /// The first graph input's name (image classifiers have one).
    public var inputName: String { graph.inputs.first?.name ?? "" }

    /// Runs the graph. `feeds` maps graph input names to tensors.
    ///
    /// - Parameters:
    ///   - taps: tensors the caller will read; the original graph runs when one was optimized away.
    ///   - keepAll: keep every tensor (needed by `backward`); when false, each tensor is freed after
    ///     its last reader, so peak memory follows the live set, not the whole network.
    ///   - clock: when given, adds each node's wall time to it (`candela bench --layers`).
    public func run(_ feeds: [String: Tensor], taps: [String] = [], keepAll: Bool = true,
                    clock: NodeClock? = nil) throws -> ForwardPass {
        try Deadline.check()
        let optimized = taps.allSatisfy(optimizedNames.contains)
        let g = optimized ? optimizedGraph : graph
        var inputs: [Tensor] = []
        for input in g.inputs {
            guard let t = feeds[input.name] else { throw EngineError("\(path): missing value for graph input '\(input.name)'") }
            try checkShape(t, against: input)
            inputs.append(t)
        }
        // An inference pass without taps replays the plan the first one at these shapes made.
        let planKey = optimized && !keepAll && taps.isEmpty && clock == nil && kernels.inferencePlans
            ? InferencePlan.Key(shapes: inputs.map(\.shape)) : nil
        func collected(_ outputs: [Tensor?]) throws -> [Tensor] {
            try zip(g.outputs, outputs).map { name, value in
                guard let value else { throw EngineError("\(path): output '\(name)' was not computed") }
                return value
            }
        }
        if let planKey, let plan = plans.plan(planKey),
           let computed = try plan.run(inputs, kernels: kernels, failure: { error, index, step in self.failure(error, node: g.nodes[index], step: step, in: g) }) {
            let outputs = try collected(computed)
            return ForwardPass(values: Dictionary(zip(g.outputs, outputs), uniquingKeysWith: { first, _ in first }),
                               outputs: outputs, graph: g, reachable: optimizedDependsOnInput)
        }
        let frees = optimized ? optimizedLastUse : lastUse
        let keep = Set(g.outputs).union(taps)
        var values = g.initializers
        for (input, t) in zip(g.inputs, inputs) { values[input.name] = t }
        // Inference on the optimized graph runs some runs of nodes as one (`FusedStep`) where
        // nobody asked for the tensors between them; `skip` holds the nodes a fused step has done.
        let fusing = optimized && !keepAll
        var skip = Set<Int>()
        var produced = 0
        var trace: [InferencePlan.Trace] = []
        let free = optimized ? optimizedSelectionFree : selectionFree
        for (index, node) in g.nodes.enumerated() {
            if !skip.contains(index) {
                let step = fusing ? fusedStep(at: index, node, values: values, keep: keep) : nil
                var residualShape: [Int]? = nil
                if planKey != nil, case .residual(let fusion, _) = step { residualShape = values[fusion.residual]?.shape }
                let args = node.inputs.map { $0.isEmpty ? nil : values[$0] }
                let started = clock == nil ? 0 : DispatchTime.now().uptimeNanoseconds
                let results: [Tensor]
                do {
                    if let step {
                        results = [try step.run(args, extra: step.extraInputs(in: g), handsOver: step.handsOverResidual(frees: frees, keep: keep),
                                                   kernels: kernels) { name, take in
                            name.isEmpty ? nil : take ? values.removeValue(forKey: name) : values[name]
                        }]
                        skip.formUnion(step.skipped)
                    } else {
                        results = try node.op.forward(args, Pass(kernels: kernels, inference: !keepAll || free.contains(index)))
                    }
                    clock?.add(node: index, of: g, shape: results.first?.shape ?? [], nanoseconds: DispatchTime.now().uptimeNanoseconds - started,
                               with: step?.namedWith)
                } catch {
                    throw failure(error, node: node, step: step, in: g)
                }
                if planKey != nil { trace.append((index, step, residualShape)) }
                let names = step.map { [$0.output] } ?? node.outputs
                produced += results.reduce(0) { $0 + $1.count }
                for (name, value) in zip(names, results) where !name.isEmpty { values[name] = value }
            }
            if !keepAll {
                for name in frees[index] where !keep.contains(name) { values[name] = nil }
            }
        }
        if !keepAll && taps.isEmpty, let x = feeds[inputName], x.rank > 1, x.shape[0] > 0 {
            activationFloats.record(Array(x.shape.dropFirst()), produced / x.shape[0])
        }
        if let planKey { plans.store(InferencePlan(graph: g, trace: trace, frees: frees, keep: keep), for: planKey) }
        return ForwardPass(values: values, outputs: try collected(g.outputs.map { values[$0] }),
                           graph: g, reachable: optimized ? optimizedDependsOnInput : dependsOnInput)
    }

    /// An error from node `node` (and the fused step starting at it), named for the user: the
    /// model file, the node, its operator and what it ran with.
    func failure(_ error: Error, node: Node, step: FusedStep?, in g: Graph) -> Error {
        switch error {
        case let e as EngineError: return e.prefixed("\(path): node '\(node.name)' (\(node.opType))\(step?.description(in: g) ?? ""): ")
        case let e as TensorError: return EngineError("\(path): \(EngineError.node(node, e.description))")
        default: return error
        }
    }

    /// Runs a single-input model and returns its first output: x (N,C,H,W) -> logits (N,K).
    ///
    /// A batch runs in chunks of a few images (`imagesPerChunk`), each through the whole
    /// network. With two or more threads and at least as many images, the chunks run side by
    /// side, each on one thread with every operator inside single-threaded (a parallel region
    /// nested in another runs serially, see `Parallel`). A thread then reads only what it wrote
    /// itself, where splitting each operator across the cores makes every layer read what the
    /// other core just wrote, and it waits once per chunk instead of at the end of every
    /// operator. Every image's result is the same either way: threads split a kernel's outputs,
    /// never a sum.
    public func forward(_ x: Tensor, clock: NodeClock? = nil) throws -> Tensor {
        try Deadline.check()
        if let input = graph.inputs.first { try checkShape(x, against: input) }
        let n = x.rank > 0 ? x.shape[0] : 0
        // The per-node clock is not shared between threads.
        let threads = clock == nil ? BLAS.threadCount : 1
        // Only a batch axis the graph leaves free (or does not declare) can be split.
        let declared = graph.inputs.first?.shape ?? []
        let splittable = n > 1 && x.rank >= 2 && (declared.isEmpty || declared[0] == nil || declared[0] == 0)
        let sizes = splittable ? Model.chunkSizes(images: n, perChunk: try imagesPerChunk(for: x)) : [n]
        guard sizes.count > 1 else {
            return try run([inputName: x], keepAll: false, clock: clock).outputs[0]
        }
        let per = x.count / n
        var starts = [0]
        for size in sizes { starts.append(starts.last! + size) }
        let parts = sizes.indices.map { i in
            Tensor(shape: [sizes[i]] + x.shape.dropFirst(), data: Array(x.data[(starts[i] * per)..<(starts[i + 1] * per)]))
        }
        guard threads > 1 else {
            return try Layout.concat(parts.map { try run([inputName: $0], keepAll: false, clock: clock).outputs[0] }, axis: 0)
        }
        return try Layout.concat(try Parallel.map(threads, count: parts.count) { i in
            try self.run([self.inputName: parts[i]], keepAll: false).outputs[0]
        }, axis: 0)
    }

    /// Images per chunk of `forward` for a batch like `x` (N,C,H,W): `kernels.chunk` when set;
    /// otherwise the bytes of weights the kernels read over the bytes of node outputs one image
    /// produces, rounded, at least 1. Each chunk reads every weight once, and each image's
    /// activations go through memory once a chunk works on more than a cache holds; the ratio
    /// balances the two. The weights are counted as the kernels read them: a convolution that can
    /// run by Winograd (on the AVX2 and AVX-512 paths with Winograd on) as F(4×4, 3×3)'s
    /// transformed weights, four times its 3×3 ones (`winogradExtraBytes`).
    ///
    /// The activation bytes come from the first inference pass at that image shape. When none
    /// has run yet, one image runs alone first to measure them (its result is not used): the
    /// split, and with it every image's result to the last bit, is then the same on every call
    /// and at any thread count. (A chunk's size can choose the kernel: Winograd needs 16 tiles
    /// in the chunk, and a batch of one goes through a fully connected layer as a
    /// matrix-vector product.)
    /// (The ratio and the chunks it gives against the best fixed sizes: tools/bench/README.md,
    /// "Figures behind the kernels".)
    func imagesPerChunk(for x: Tensor) throws -> Int {
        if let fixed = kernels.chunk { return Swift.max(1, fixed) }
        let perImage = Array(x.shape.dropFirst())
        if activationFloats.value(perImage) == nil, x.rank > 1, x.shape[0] > 0 {
            _ = try run([inputName: x.item(0)], keepAll: false)
        }
        guard let floats = activationFloats.value(perImage), floats > 0 else { return 4 }
        let weights = parameterBytes + (kernels.winograd && kernels.level >= 1 ? winogradExtraBytes : 0)
        return Swift.max(1, Int((Double(weights) / Double(4 * floats)).rounded()))
    }

    /// `winogradExtraBytes` of a graph: 3 × the weight bytes of each 2-D Conv that `Conv2D` may run
    /// by Winograd (`Conv2D.winogradShaped`: the conditions that do not depend on the input's size).
    static func winogradExtraBytes(_ g: Graph) -> Int {
        var bytes = 0
        for node in g.nodes where node.opType == "Conv" && node.inputs.count > 1 {
            guard let op = node.op as? ConvOp, let w = g.initializers[node.inputs[1]], w.rank == 4 else { continue }
            let s = op.strides ?? [1, 1], d = op.dilations ?? [1, 1]
            guard s.count == 2, d.count == 2 else { continue }
            let geometry = Conv2DGeometry(kernel: (w.shape[2], w.shape[3]), strides: (s[0], s[1]),
                                          dilations: (d[0], d[1]), group: op.group)
            if Conv2D.winogradShaped(geometry, channels: w.shape[1] * op.group) { bytes += 3 * w.count * 4 }
        }
        return bytes
    }

    /// How `forward` splits a batch of `n` images: ceil(n / perChunk) chunks, rounded up to an
    /// even number (so that two threads, the usual count, get equal shares), of balanced sizes
    /// (they differ by at most one image). Independent of the thread count, so that a result
    /// does not depend on it.
    static func chunkSizes(images n: Int, perChunk: Int) -> [Int] {
        guard n > 1 else { return [n] }
        let parts = Swift.min(n, ((n + perChunk - 1) / perChunk + 1) / 2 * 2)
        return (0..<parts).map { n * ($0 + 1) / parts - n * $0 / parts }
    }

    /// Back-propagates `seeds` (gradients of a scalar objective with respect to named tensors,
    /// usually the logits) and returns the gradient at each tensor named in `wrt`.
    ///
    /// Only nodes between the seeds and the requested tensors are visited: a Grad-CAM tap at the
    /// last convolution does not pay for the backward pass through the stem.
    public func backward(_ pass: ForwardPass, seeds: [String: Tensor], wrt: [String],
                         relu: ReluBackward = .gradient) throws -> [String: Tensor] {
        try Deadline.check()
        for name in wrt where pass.values[name] == nil {
            throw EngineError("\(path): no tensor named '\(name)' in the model")
        }
        let graph = pass.graph
        let relevant = Model.forwardClosure(of: Set(wrt), in: graph).intersection(pass.reachable.union(wrt))
        var grads = seeds
        for node in graph.nodes.reversed() {
            guard node.inputs.contains(where: relevant.contains) else { continue }
            let gradOutputs = node.outputs.map { grads[$0] }
            if gradOutputs.allSatisfy({ $0 == nil }) { continue }
            let args = node.inputs.map { $0.isEmpty ? nil : pass.values[$0] }
            let outs = node.outputs.map { pass.values[$0] ?? Tensor(shape: [0]) }
            let gradInputs: [Tensor?]
            do {
                gradInputs = try node.op.backward(inputs: args, outputs: outs, gradOutputs: gradOutputs,
                                                  Pass(kernels: kernels, relu: relu))
            } catch let e as EngineError {
                throw e.prefixed("\(path): backward of node '\(node.name)' (\(node.opType)): ")
            }
            for (name, g) in zip(node.inputs, gradInputs) {
                guard let g, relevant.contains(name) else { continue }
                if let existing = grads[name] {
                    grads[name] = existing.shape == g.shape ? Elementwise.add(existing, g) : try Elementwise.binary(existing, g, +)
                } else {
                    grads[name] = g
                }
            }
        }
        var result: [String: Tensor] = [:]
        for name in wrt {
            // A tensor the objective does not depend on has a zero gradient.
            result[name] = grads[name] ?? Tensor(shape: pass.values[name]!.shape)
        }
        return result
    }

    /// Operators that select one element of several by comparing values (max pooling's winner,
    /// an elementwise Max or Min): where values tie exactly, the gradient takes the first, so
    /// rounding that differs in the last bits changes which element gets it.
    static let selecting: Set<String> = ["MaxPool", "GlobalMaxPool", "Max", "Min", "ReduceMax", "ReduceMin", "ArgMax", "ArgMin", "TopK"]

    /// The nodes of `graph` whose outputs no selecting operator (`selecting`) depends on, through
    /// any path. Their values decide no tie, so even in a pass a gradient is taken through they
    /// run as in an inference pass (`Pass.inference`: Conv's Winograd may take F(4×4, 3×3),
    /// whose rounding turns a constant plane, such as a zero baseline gives, into one varying in
    /// its last bits). In resnet18 the one MaxPool follows the stem, so every 3 × 3 convolution is
    /// free; in VGG a MaxPool follows every block, so none is (they keep F(2×2, 3×3) in gradient
    /// passes and their ties match Captum's). ReLU's mask changes only for a pre-activation
    /// within rounding of zero, as any kernel's rounding may move it.
    static func selectionFree(_ graph: Graph) -> Set<Int> {
        // Nodes are in topological order: walking back, every reader of a node's outputs has
        // been seen when the node is reached.
        var upstream = Set<String>()
        var free = Set<Int>()
        for (index, node) in graph.nodes.enumerated().reversed() {
            if selecting.contains(node.opType) || node.outputs.contains(where: upstream.contains) {
                upstream.formUnion(node.inputs)
            } else {
                free.insert(index)
            }
        }
        return free
    }

    /// For each node, the non-initializer tensors it is the last node to read.
    static func lastUses(_ graph: Graph) -> [[String]] {
        var last: [String: Int] = [:]
        for (i, n) in graph.nodes.enumerated() { for t in n.inputs where !t.isEmpty { last[t] = i } }
        var out = [[String]](repeating: [], count: graph.nodes.count)
        for (t, i) in last where graph.initializers[t] == nil { out[i].append(t) }
        return out
    }

    /// Every tensor computed from `start` (including `start` itself).
    static func forwardClosure(of start: Set<String>, in graph: Graph) -> Set<String> {
        var reached = start
        for node in graph.nodes where node.inputs.contains(where: reached.contains) {
            for o in node.outputs { reached.insert(o) }
        }
        return reached
    }

    func checkShape(_ t: Tensor, against input: GraphInput) throws {
        let ok = t.rank == input.shape.count
            && zip(t.shape, input.shape).allSatisfy { actual, declared in declared == nil || declared == actual || declared == 0 }
        if !ok && !input.shape.isEmpty {
            let declared = input.shape.map { $0.map(String.init) ?? "?" }.joined(separator: ",")
            var why = ""
            if case .fixed(let fixedBatch, let reason) = batch, t.rank == input.shape.count, t.shape.first != fixedBatch {
                why = " (the file fixes the batch at \(fixedBatch) and re-planning it for other batches failed: \(reason))"
            }
            throw EngineError("\(path): input '\(input.name)' expects shape [\(declared)], got \(t.shape)\(why)")
        }
    }
}

/// A value per input shape, kept from the first time it is recorded; safe across threads.
final class ShapeMemo: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [[Int]: Int] = [:]

    func value(_ shape: [Int]) -> Int? {
        lock.lock()
        defer { lock.unlock() }
        return values[shape]
    }

    func record(_ shape: [Int], _ value: Int) {
        lock.lock()
        if values[shape] == nil { values[shape] = value }
        lock.unlock()
    }
}
