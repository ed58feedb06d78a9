import Explainers

/// The stage DAG of a manifest: explicit `needs:` plus inferred edges, in a runnable order.
///
/// Inferred edges: explain needs every predict stage (targets depend on the prediction),
/// evaluate, compare, drift and spray need every explain stage (an evaluate stage whose `needs:`
/// names explain stages: those only), report needs every other stage.
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
            case .evaluate, .compare, .drift, .spray: inferred = [.explain]
            case .report: inferred = [.predict, .explain, .evaluate, .compare, .drift, .spray]
            }
            // An evaluate stage that names explain stages in `needs` measures those only.
            let namesExplain = s.kind == .evaluate && s.needs.contains { n in stages.first { $0.name == n }?.kind == .explain }
            for o in stages where inferred.contains(o.kind) && !needs.contains(o.name) {
                if o.kind == .explain && namesExplain { continue }
                needs.append(o.name)
            }
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

    /// What a run computes: every dataset × model pair a predict or explain stage covers, each
    /// with the explainers of the explain stages that cover it and, per explainer, the metrics of
    /// the evaluate stages that need those explain stages. A manifest without predict or explain
    /// stages predicts every dataset with every model. Sorted by dataset, then model.
    public var combinations: [Combination] {
        let datasets = manifest.datasets.keys.sorted(), models = manifest.models.keys.sorted()
        func covered(_ s: StageSpec) -> [(String, String)] {
            let ds = s.datasets.isEmpty ? datasets : s.datasets, ms = s.models.isEmpty ? models : s.models
            return ds.flatMap { d in ms.map { (d, $0) } }
        }
        var byPair: [String: Combination] = [:]
        func key(_ d: String, _ m: String) -> String { "\(d)\u{0}\(m)" }
        let producing = order.filter { $0.kind == .predict || $0.kind == .explain }
        let pairs = producing.isEmpty ? datasets.flatMap { d in models.map { (d, $0) } } : producing.flatMap(covered)
        for (d, m) in pairs where byPair[key(d, m)] == nil { byPair[key(d, m)] = Combination(dataset: d, model: m, explainers: []) }
        for stage in order where stage.kind == .explain {
            let names = stage.explainers.isEmpty ? manifest.explainers.keys.sorted() : stage.explainers
            // The metrics of every evaluate stage that waits for this explain stage.
            let metrics = Set(order.filter { $0.kind == .evaluate && (edges[$0.name] ?? []).contains(stage.name) }.flatMap(\.metrics))
            for (d, m) in covered(stage) {
                for name in names {
                    byPair[key(d, m)]!.explainers.append(PlannedExplainer(spec: manifest.explainers[name]!, stage: stage.name,
                                                                           target: stage.target, metrics: metrics))
                }
            }
        }
        return byPair.values.sorted { ($0.dataset, $0.model) < ($1.dataset, $1.model) }
    }

    /// What the manifest defines but no stage uses, one line each at its definition
    /// (FILE:LINE:COLUMN): datasets and models no predict or explain stage covers, explainers no
    /// explain stage runs, and evaluate stages without an explain stage to measure.
    public var warnings: [String] {
        var out: [String] = []
        let combos = combinations
        let usedDatasets = Set(combos.map(\.dataset)), usedModels = Set(combos.map(\.model))
        for name in manifest.datasets.keys.sorted() where !usedDatasets.contains(name) {
            out.append("\(manifest.location("datasets.\(name)")): dataset '\(name)' is not run: no predict or explain stage covers it")
        }
        for name in manifest.models.keys.sorted() where !usedModels.contains(name) {
            out.append("\(manifest.location("models.\(name)")): model '\(name)' is not run: no predict or explain stage covers it")
        }
        let explainStages = order.filter { $0.kind == .explain }
        let used = Set(explainStages.flatMap { $0.explainers.isEmpty ? Array(manifest.explainers.keys) : $0.explainers })
        for name in manifest.explainers.keys.sorted() where !used.contains(name) {
            out.append("\(manifest.location("explainers.\(name)")): explainer '\(name)' is not run: no explain stage names it"
                       + (explainStages.isEmpty ? " (there is no explain stage)" : ""))
        }
        for stage in order where stage.kind == .evaluate {
            let needed = Set(edges[stage.name] ?? [])
            if !explainStages.contains(where: { needed.contains($0.name) }) {
                out.append("\(manifest.file):\(stage.line):\(stage.column): evaluate stage '\(stage.name)' measures nothing: "
                           + "it needs no explain stage")
            }
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
            if s.kind == .compare { detail += " [\(s.models.joined(separator: " vs "))]" }
            if s.kind == .drift { detail += " [against \(s.baseline ?? "previous")]" }
            if s.kind == .spray { detail += " [\(s.spray.size)×\(s.spray.size) grid, up to \(s.spray.maxClusters) clusters per class]" }
            if !s.datasets.isEmpty { detail += " datasets: \(s.datasets.joined(separator: ", "))" }
            if !s.models.isEmpty && s.kind != .compare { detail += " models: \(s.models.joined(separator: ", "))" }
            lines.append("    \(s.name): \(detail)" + (needs.isEmpty ? "" : "  <- \(needs.joined(separator: ", "))"))
        }
        let combos = combinations
        lines.append("  runs \(combos.count) dataset × model combinations:")
        for c in combos {
            let names = c.explainers.map { e in e.spec.name + (e.spec.only.map { " (only \($0.description))" } ?? "") }
            lines.append("    \(c.dataset) × \(c.model): " + (names.isEmpty ? "predictions only" : names.joined(separator: ", ")))
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

/// One dataset × model pair of a run and the explainers that run on it.
public struct Combination: Sendable, Equatable {
    public var dataset: String
    public var model: String
    public var explainers: [PlannedExplainer]
}

/// An explainer as an explain stage runs it: its target, and the metrics measured on its heatmaps.
public struct PlannedExplainer: Sendable, Equatable {
    public var spec: ExplainerSpec
    /// The explain stage that runs it.
    public var stage: String
    public var target: TargetSpec
    public var metrics: Set<String>
}
