import Foundation
import Tensors

/// An inference pass on the optimized graph (no taps, tensors freed after their last reader),
/// compiled for one set of input shapes: the steps the pass runs, each with the slots of the
/// tensors it reads, writes and frees, in an array instead of a dictionary by name.
///
/// `Model.run` builds one from the first such pass at a shape: that pass runs node by node by
/// name, deciding at each node which fused step applies (`Model.fusedStep`, which looks at the
/// shapes), and records what it ran; later passes at the same shapes replay the record. The
/// decisions depend only on the shapes, the taps (none) and the fusion switches, all part of
/// the key, so a replayed pass runs the same kernels on the same tensors: the same bits. (One
/// decision reads an intermediate shape: a residual is fused only where its shape is the
/// convolution's output shape. A graph input's values could in principle decide such a shape;
/// a replay therefore checks the residual's shape and gives up on a different one, and the pass
/// runs by name.)
///
/// What it saves is the bookkeeping between kernels. MobileNetV2 at batch 1 spent 7 % of a pass
/// (about 8 µs a node on two threads, with caches cold after each kernel) between one kernel's
/// end and the next one's start: hashing tensor names for the dictionary of values, looking up
/// the fusions, building and merging the set of skipped nodes.
final class InferencePlan: Sendable {
    /// What one step runs: a node's operator, or a fused run of nodes starting at it (boxed, so
    /// that reading it out of a step retains one object, not every array its operators hold).
    enum Work: Sendable {
        case node(any Operator)
        case fused(Fused)
    }

    final class Fused: Sendable {
        let step: FusedStep
        init(_ step: FusedStep) { self.step = step }
    }

    /// One step (a class: a pass reads it without copying its arrays).
    final class Step: Sendable {
        /// The graph node the step starts at (for error messages).
        let node: Int
        let work: Work
        /// The node's inputs as `Ref`s.
        let inputs: [Int]
        /// What a fused step reads besides (`FusedStep.extraInputs`), as `Ref`s.
        let extra: [Int]
        /// Whether a fused residual takes the residual's buffer (`FusedStep.handsOverResidual`),
        /// and the residual's shape when the plan was made.
        let handsOver: Bool
        let residualShape: [Int]?
        /// Slots written, in the order of the results (-1: an omitted output).
        let outputs: [Int]
        /// Slots released after the step: tensors whose last reader has run.
        let frees: [Int]

        init(node: Int, work: Work, inputs: [Int], extra: [Int], handsOver: Bool, residualShape: [Int]?, outputs: [Int],
             frees: [Int]) {
            (self.node, self.work, self.inputs, self.extra) = (node, work, inputs, extra)
            (self.handsOver, self.residualShape, self.outputs, self.frees) = (handsOver, residualShape, outputs, frees)
        }
    }

    /// Where a step finds a tensor: a slot of the pass (0, 1, ...: graph inputs and node
    /// outputs), a constant (-2, -3, ...: initializer -2 - ref), or nothing (-1: an omitted
    /// input or output). Constants stay out of the slots, so that a pass neither copies nor
    /// retains and releases the model's weights.
    enum Ref {
        static let none = -1
        static func constant(_ i: Int) -> Int { -2 - i }
        static func constantIndex(_ ref: Int) -> Int { -2 - ref }
    }

    /// Slots per pass, and the initializers.
    let slotCount: Int
    let constants: [Tensor]
    /// The graph inputs' slots and the graph outputs' `Ref`s, in the graph's order.
    let inputs: [Int]
    let outputs: [Int]
    let steps: [Step]

    /// The plan of a pass over `graph` that ran `trace` (each executed node, the fused step it
    /// started, if any, and the shape of a fused residual), freeing `frees[i]` after node i
    /// except what `keep` names.
    init(graph: Graph, trace: [Trace], frees: [[String]], keep: Set<String>) {
        var ref: [String: Int] = [:]
        var slotCount = 0
        func add(_ name: String) {
            if !name.isEmpty && ref[name] == nil {
                ref[name] = slotCount
                slotCount += 1
            }
        }
        for input in graph.inputs { add(input.name) }
        for node in graph.nodes { node.outputs.forEach(add) }
        let constantNames = graph.initializers.keys.filter { ref[$0] == nil }.sorted()
        for (i, name) in constantNames.enumerated() { ref[name] = Ref.constant(i) }
        func slots(_ names: [String]) -> [Int] { names.map { ref[$0] ?? Ref.none } }

        var steps: [Step] = []
        for (k, (index, fused, residualShape)) in trace.enumerated() {
            let node = graph.nodes[index]
            // The frees of this node and of the ones a fused step skipped before the next step
            // (as the pass by name frees them: after each node's index, executed or not).
            let end = k + 1 < trace.count ? trace[k + 1].node : graph.nodes.count
            let released = ((k == 0 ? 0 : index)..<end).flatMap { frees[$0].filter { !keep.contains($0) } }
            steps.append(Step(node: index, work: fused.map { .fused(Fused($0)) } ?? .node(node.op), inputs: slots(node.inputs),
                              extra: slots(fused?.extraInputs(in: graph) ?? []),
                              handsOver: fused?.handsOverResidual(frees: frees, keep: keep) ?? false, residualShape: residualShape,
                              outputs: fused.map { slots([$0.output]) } ?? slots(node.outputs),
                              frees: slots(released).filter { $0 >= 0 }))
        }
        self.slotCount = slotCount
        self.constants = constantNames.map { graph.initializers[$0]! }
        self.inputs = slots(graph.inputs.map(\.name))
        self.outputs = slots(graph.outputs)
        self.steps = steps
    }

    /// One executed node of a pass by name: its index, the fused step it started, and the
    /// residual's shape for a fused residual.
    typealias Trace = (node: Int, step: FusedStep?, residualShape: [Int]?)

    /// Runs the plan on `feeds` (one per graph input, in order) and returns the graph outputs
    /// (nil where one was not computed); nil when a residual's shape is not the plan's (the
    /// pass must run by name). An error is `failure`'s for the node it comes from.
    func run(_ feeds: [Tensor], kernels: KernelOptions, failure: (Error, Int, FusedStep?) -> Error) throws -> [Tensor?]? {
        let pass = Pass(kernels: kernels, inference: true)
        var values = [Tensor?](repeating: nil, count: slotCount)
        for (slot, t) in zip(inputs, feeds) where slot >= 0 { values[slot] = t }
        func value(_ ref: Int) -> Tensor? { ref >= 0 ? values[ref] : ref == Ref.none ? nil : constants[Ref.constantIndex(ref)] }
        for step in steps {
            let args = step.inputs.map(value)
            switch step.work {
            case .node(let op):
                let results: [Tensor]
                do { results = try op.forward(args, pass) } catch { throw failure(error, step.node, nil) }
                for (slot, value) in zip(step.outputs, results) where slot >= 0 { values[slot] = value }
            case .fused(let box):
                if case .residual = box.step, value(step.extra[0])?.shape != step.residualShape { return nil }
                let result: Tensor
                do {
                    result = try box.step.run(args, extra: step.extra, handsOver: step.handsOver, kernels: kernels) { ref, take in
                        take && ref >= 0 ? values[ref].take() : value(ref)
                    }
                } catch {
                    throw failure(error, step.node, box.step)
                }
                values[step.outputs[0]] = result
            }
            for slot in step.frees { values[slot] = nil }
        }
        return outputs.map(value)
    }

    /// What a plan is for: the input shapes (the fusion switches are the model's `kernels`,
    /// fixed for its life).
    struct Key: Hashable {
        let shapes: [[Int]]
    }

    /// The plans of one model by key; safe across threads. Holds a few (a model sees few input
    /// shapes: the batch chunks of `Model.forward`), and starts over when full.
    final class Memo: @unchecked Sendable {
        private let lock = NSLock()
        private var plans: [Key: InferencePlan] = [:]
        let capacity = 16

        func plan(_ key: Key) -> InferencePlan? {
            lock.lock()
            defer { lock.unlock() }
            return plans[key]
        }

        func store(_ plan: InferencePlan, for key: Key) {
            lock.lock()
            if plans.count >= capacity { plans.removeAll() }
            plans[key] = plan
            lock.unlock()
        }

        var count: Int {
            lock.lock()
            defer { lock.unlock() }
            return plans.count
        }
    }
}
