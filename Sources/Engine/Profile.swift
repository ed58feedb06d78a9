import Tensors

/// What one node of a model does on a given input: output shapes, constant parameters it
/// reads, and multiply-accumulates (for Conv, Gemm and MatMul; 0 for the others).
public struct NodeProfile: Sendable {
    public let name: String
    public let opType: String
    public let outputShapes: [[Int]]
    public let parameters: Int
    public let macs: Int
}

extension Model {
    /// Runs `input` through the original graph and profiles every node (`candela inspect`).
    /// FLOPs are 2 × MACs: a Conv costs N·C_out·H_out·W_out·(C_in/groups)·k_h·k_w MACs, a Gemm
    /// or MatMul (output elements) × (inner dimension).
    public func profile(input: Tensor) throws -> [NodeProfile] {
        let pass = try run([inputName: input], taps: graph.tensorNames)
        var counted = Set<String>()
        return graph.nodes.map { node in
            let outputs = node.outputs.map { pass.values[$0]?.shape ?? [] }
            var params = 0
            for name in node.inputs where !name.isEmpty && counted.insert(name).inserted {
                params += graph.initializers[name]?.count ?? 0
            }
            let out = outputs.first ?? []
            let elements = out.reduce(1, *)
            var macs = 0
            switch node.opType {
            case "Conv":
                if node.inputs.count > 1, let w = pass.values[node.inputs[1]]?.shape, w.count >= 3 {
                    macs = elements * w.dropFirst().reduce(1, *) // every output element: C_in/g · k_h · k_w
                }
            case "Gemm":
                if let a = pass.values[node.inputs[0]]?.shape, a.count == 2, let gemm = node.op as? GemmOp {
                    macs = elements * (gemm.transA ? a[0] : a[1])
                }
            case "MatMul":
                if let a = pass.values[node.inputs[0]]?.shape, let k = a.last { macs = elements * k }
            default:
                break
            }
            return NodeProfile(name: node.name, opType: node.opType, outputShapes: outputs, parameters: params, macs: macs)
        }
    }
}

/// Wall time per node, summed over the passes it is given to (`Model.run(clock:)`): which
/// layers a model's time goes to (`candela bench --layers`). Not thread-safe: one pass at a time.
public final class NodeClock: @unchecked Sendable {
    /// One node's total: its name, operator, first output's shape (last pass) and summed
    /// nanoseconds.
    public struct Entry: Sendable {
        public let name: String
        public let opType: String
        public var shape: [Int]
        public var nanoseconds: UInt64
    }
    private var entries: [Int: Entry] = [:]

    public init() {}

    /// Adds a node's time; `with`, a node it ran together with (a fused depthwise Conv): the
    /// entry is then named "first + second".
    func add(node index: Int, of graph: Graph, shape: [Int], nanoseconds: UInt64, with other: Int? = nil) {
        if entries[index] == nil {
            let node = graph.nodes[index]
            let name = other.map { "\(node.name) + \(graph.nodes[$0].name)" } ?? node.name
            entries[index] = Entry(name: name, opType: node.opType, shape: shape, nanoseconds: 0)
        }
        entries[index]!.nanoseconds += nanoseconds
        entries[index]!.shape = shape
    }

    /// Every timed node, slowest first.
    public var slowestFirst: [Entry] { entries.values.sorted { $0.nanoseconds > $1.nanoseconds } }

    /// Summed time per operator type, largest first.
    public var byOperator: [(opType: String, nanoseconds: UInt64)] {
        Dictionary(grouping: entries.values, by: \.opType)
            .map { ($0.key, $0.value.reduce(0) { $0 + $1.nanoseconds }) }
            .sorted { $0.1 > $1.1 }
    }
}
