import Explainers

/// The stage DAG of a manifest: explicit `needs:` plus inferred edges, in a runnable order.
///
/// Inferred edges: explain needs every predict stage (targets depend on the prediction),
/// evaluate needs every explain stage, report needs every other stage.
public struct Plan: Sendable {
    public let manifest: Manifest
    /// Stages in dependency order.
    public let order: [StageSpec]
    /// For each stage, the stages it waits for (explicit and inferred).
    public let edges: [String: [String]]

    public init(_ manifest: Manifest) throws {
        self.manifest = manifest
        let stages = manifest.stages
        let names = stages.map(\.name)
        var edges: [String: [String]] = [:]
        for s in stages {
            var needs = s.needs
            for n in s.needs where !names.contains(n) {
                throw ManifestError(file: manifest.file, line: s.line, column: s.column,
                                    message: "stage '\(s.name)' needs '\(n)', which is not a stage" +
                                        (suggestion(for: n, among: names).map { " (did you mean '\($0)'?)" } ?? ""))
            }
            let inferred: [StageSpec.Kind]
            switch s.kind {
            case .predict: inferred = []
            case .explain: inferred = [.predict]
            case .evaluate: inferred = [.explain]
            case .report: inferred = [.predict, .explain, .evaluate]
            }
            for o in stages where inferred.contains(o.kind) && !needs.contains(o.name) { needs.append(o.name) }
            edges[s.name] = needs
        }
        // Depth-first topological sort that names the cycle it finds.
        var order: [StageSpec] = []
        var state: [String: Int] = [:] // 1 visiting, 2 done
        func visit(_ name: String, _ path: [String]) throws {
            if state[name] == 2 { return }
            if state[name] == 1 {
                let cycle = path.drop { $0 != name } + [name]
                let s = stages.first { $0.name == name }!
                throw ManifestError(file: manifest.file, line: s.line, column: s.column,
                                    message: "the stages form a cycle: \(cycle.joined(separator: " -> "))")
            }
            state[name] = 1
            for n in edges[name] ?? [] { try visit(n, path + [name]) }
            state[name] = 2
            order.append(stages.first { $0.name == name }!)
        }
        for s in stages { try visit(s.name, []) }
        self.order = order
        self.edges = edges
    }

    /// The dataset and the model a run uses: the first a stage names, else the first by name.
    /// (A run covers one dataset and one model; the DAG over every dataset × model is still to
    /// be built: `warnings` names what a run leaves out.)
    public var runDataset: String? { order.compactMap(\.dataset).first ?? manifest.datasets.keys.sorted().first }
    public var runModel: String? { order.compactMap(\.model).first ?? manifest.models.keys.sorted().first }

    /// What the manifest defines but a run does not use, one line each naming the manifest:
    /// datasets and models besides the one a run takes, explainers no explain stage runs.
    public var warnings: [String] {
        var out: [String] = []
        for name in manifest.datasets.keys.sorted() where name != runDataset {
            out.append("\(manifest.file): dataset '\(name)' is not run: a run covers one dataset ('\(runDataset ?? "")') and one model")
        }
        for name in manifest.models.keys.sorted() where name != runModel {
            out.append("\(manifest.file): model '\(name)' is not run: a run covers one model ('\(runModel ?? "")') and one dataset")
        }
        let explainStages = order.filter { $0.kind == .explain }
        let used = Set(explainStages.flatMap { $0.explainers.isEmpty ? Array(manifest.explainers.keys) : $0.explainers })
        for name in manifest.explainers.keys.sorted() where !used.contains(name) {
            out.append("\(manifest.file): explainer '\(name)' is not run: no explain stage names it"
                       + (explainStages.isEmpty ? " (there is no explain stage)" : ""))
        }
        return out
    }

    /// A human-readable plan, as `candela validate` prints it.
    public func describe(itemCounts: [String: Int]) -> String {
        var lines = ["pipeline \(manifest.pipeline) (\(manifest.file))"]
        for (name, d) in manifest.datasets.sorted(by: { $0.key < $1.key }) {
            lines.append("  dataset \(name): \(itemCounts[name].map(String.init) ?? "?") items from \(d.origin)")
        }
        for (name, m) in manifest.models.sorted(by: { $0.key < $1.key }) {
            lines.append("  model \(name): \(m.onnx), \(m.classes.count) classes, input \(m.preprocessing.width)x\(m.preprocessing.height)")
        }
        lines.append("  stages, in order:")
        for s in order {
            let needs = edges[s.name] ?? []
            var detail = s.kind.rawValue
            if s.kind == .explain {
                let chosen = s.explainers.isEmpty ? manifest.explainers.keys.sorted() : s.explainers
                detail += " [\(chosen.joined(separator: ", "))]"
            }
            if s.kind == .evaluate { detail += " [\(s.metrics.joined(separator: ", "))]" }
            lines.append("    \(s.name): \(detail)" + (needs.isEmpty ? "" : "  <- \(needs.joined(separator: ", "))"))
        }
        return lines.joined(separator: "\n")
    }

    /// The DAG in Graphviz dot.
    public var dot: String {
        var lines = ["digraph \"\(manifest.pipeline)\" {", "  rankdir=LR;"]
        for s in order { lines.append("  \"\(s.name)\" [label=\"\(s.name)\\n(\(s.kind.rawValue))\"];") }
        for s in order { for n in edges[s.name] ?? [] { lines.append("  \"\(n)\" -> \"\(s.name)\";") } }
        lines.append("}")
        return lines.joined(separator: "\n")
    }
}
