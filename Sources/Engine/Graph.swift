import Tensors

/// A graph input: its name and the shape ONNX declares (nil for symbolic extents such as batch).
public struct GraphInput: Sendable, Equatable {
    public let name: String
    public let shape: [Int?]
}

/// One node of the IR: an ONNX node bound to the operator that computes it.
public struct Node: Sendable {
    public let name: String
    public let opType: String
    /// Input tensor names; "" marks an omitted optional input, as in ONNX.
    public let inputs: [String]
    public let outputs: [String]
    let op: any Operator
}

/// The graph IR: nodes in topological order, constant initializers, declared inputs and outputs.
public struct Graph: Sendable {
    public let inputs: [GraphInput]
    public let outputs: [String]
    public let initializers: [String: Tensor]
    /// Nodes sorted so that every node comes after the producers of its inputs.
    public let nodes: [Node]

    /// Builds a graph and sorts its nodes topologically (Kahn's algorithm, keeping file order
    /// among ready nodes). A cycle or a dangling input is an error naming the node.
    init(inputs: [GraphInput], outputs: [String], initializers: [String: Tensor], nodes unsorted: [Node]) throws {
        self.inputs = inputs
        self.outputs = outputs
        self.initializers = initializers
        var available = Set(inputs.map(\.name)).union(initializers.keys)
        available.insert("")
        var producer: [String: Int] = [:]
        for (i, n) in unsorted.enumerated() { for o in n.outputs where !o.isEmpty { producer[o] = i } }
        var remaining = Array(unsorted.indices)
        var sorted: [Node] = []
        sorted.reserveCapacity(unsorted.count)
        while !remaining.isEmpty {
            guard let k = remaining.firstIndex(where: { unsorted[$0].inputs.allSatisfy(available.contains) }) else {
                let stuck = unsorted[remaining[0]]
                let missing = stuck.inputs.first { !available.contains($0) } ?? "?"
                if producer[missing] == nil {
                    throw EngineError.node(stuck, "input '\(missing)' is neither a graph input, an initializer nor any node's output")
                }
                throw EngineError.node(stuck, "the graph has a cycle through tensor '\(missing)'")
            }
            let node = unsorted[remaining.remove(at: k)]
            sorted.append(Node(name: node.name, opType: node.opType, inputs: node.inputs, outputs: node.outputs,
                               op: node.op.withFreshCaches()))
            for o in node.outputs { available.insert(o) }
        }
        self.nodes = sorted
        for o in outputs where !available.contains(o) {
            throw EngineError("graph output '\(o)' is not produced by any node")
        }
    }

    /// Every tensor name that a node produces or the graph takes as input, in topological order.
    public var tensorNames: [String] {
        inputs.map(\.name) + nodes.flatMap(\.outputs)
    }

    /// The default layer for CAM methods: the last rank-4 tensor before the first global pooling
    /// or flatten, i.e. the input of the first such node (for a torchvision ResNet, `layer4`'s output).
    public var defaultCAMLayer: String? {
        let pooling: Set<String> = ["GlobalAveragePool", "GlobalMaxPool", "Flatten", "ReduceMean"]
        return nodes.first { pooling.contains($0.opType) }?.inputs.first
    }
}
