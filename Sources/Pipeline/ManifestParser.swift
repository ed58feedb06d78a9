import Analysis
import Explainers
import Foundation
import Imaging
import Slides
import Yams

/// Reads a manifest file into a `Manifest`, checking keys, types and references, and reporting
/// every mistake as file:line:column with a "did you mean" hint for misspelt keys.
public enum ManifestParser {
    public static func load(path: String) throws -> Manifest {
        let url = URL(fileURLWithPath: path)
        guard let data = FileManager.default.contents(atPath: path) else {
            throw PipelineError("\(path): cannot read manifest")
        }
        return try parse(String(decoding: data, as: UTF8.self), file: path, baseDirectory: url.deletingLastPathComponent().path)
    }

    public static func parse(_ text: String, file: String, baseDirectory: String,
                             environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Manifest {
        let root: Node
        do {
            guard let n = try Yams.compose(yaml: text) else {
                throw ManifestError(file: file, line: 1, column: 1, message: "the manifest is empty")
            }
            root = n
        } catch let e as YamlError {
            throw yamlError(e, file: file)
        }
        let r = Reader(file: file, base: baseDirectory, environment: environment)
        let top = try r.mapping(root, allowed: ["pipeline", "datasets", "models", "explainers", "stages", "gates"], what: "manifest")
        let pipeline = try top["pipeline"].map { try r.string($0) } ?? URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent

        var marks: [String: ManifestMark] = [:]
        // Where each name is written (its key), for warnings about definitions nothing uses.
        for section in ["datasets", "models", "explainers"] {
            guard let n = top[section], case .mapping(let map) = n else { continue }
            for (k, _) in map {
                if case .scalar(let name) = k { marks["\(section).\(name.string)"] = ManifestMark(line: k.mark?.line ?? 1, column: k.mark?.column ?? 1) }
            }
        }
        var datasets: [String: DatasetSpec] = [:]
        for (name, node) in try r.namedMappings(try r.require(top, "datasets", in: root)) {
            let m = try r.mapping(node, allowed: ["kind", "csv", "folder", "glob", "limit", "sample", "seed", "mpp", "tile", "overlap",
                                                  "min_tissue", "tissue_mpp", "min_piece_area", "aggregate"], what: "dataset '\(name)'")
            var slides: SlideSettings?
            let kind = try m["kind"].map { try r.string($0) } ?? "images"
            switch kind {
            case "images":
                for key in ["mpp", "tile", "overlap", "min_tissue", "tissue_mpp", "min_piece_area", "aggregate"] where m[key] != nil {
                    throw r.error(m[key]!, "dataset '\(name)': \(key) applies to slide datasets; add kind: slides")
                }
            case "slides":
                var tiling = TilingOptions(mpp: try m["mpp"].map { Double(try r.float($0)) }, tile: try m["tile"].map { try r.int($0, min: 8) } ?? 224,
                                           overlap: try m["overlap"].map { try r.int($0, min: 0) } ?? 0,
                                           minTissue: try m["min_tissue"].map { Double(try r.float($0)) } ?? 0.5)
                if let n = m["mpp"], !(tiling.mpp! > 0) { throw r.error(n, "mpp must be > 0 (micrometres per pixel of the tiles)") }
                if let n = m["overlap"], tiling.overlap >= tiling.tile { throw r.error(n, "overlap must be smaller than tile (\(tiling.tile))") }
                if let n = m["min_tissue"], !(0...1).contains(tiling.minTissue) { throw r.error(n, "min_tissue must be between 0 and 1") }
                if let n = m["tissue_mpp"] {
                    tiling.tissue.mpp = Double(try r.float(n))
                    if !(tiling.tissue.mpp > 0) { throw r.error(n, "tissue_mpp must be > 0") }
                }
                if let n = m["min_piece_area"] { tiling.tissue.minPieceArea = Double(try r.float(n)) }
                var aggregation = Aggregation()
                if let an = m["aggregate"] {
                    let a = try r.mapping(an, allowed: ["rule", "k", "threshold", "class"], what: "aggregate")
                    if let rn = a["rule"] {
                        let text = try r.string(rn)
                        guard let rule = Aggregation.Rule(rawValue: text) else {
                            throw r.error(rn, "unknown aggregation rule '\(text)'; rules: \(Aggregation.Rule.allCases.map(\.rawValue).joined(separator: ", "))")
                        }
                        aggregation.rule = rule
                    }
                    if let kn = a["k"] { aggregation.k = try r.int(kn, min: 1) }
                    if let tn = a["threshold"] { aggregation.threshold = Double(try r.float(tn)) }
                    if let cn = a["class"] { aggregation.positiveClass = try r.string(cn) }
                }
                slides = SlideSettings(tiling: tiling, aggregation: aggregation)
            default:
                throw r.error(m["kind"]!, "dataset '\(name)': kind must be images or slides, got '\(kind)'")
            }
            let sources = ["csv", "folder", "glob"].filter { m[$0] != nil }
            guard sources.count == 1 else {
                throw r.error(node, sources.isEmpty ? "dataset '\(name)' needs one of csv, folder or glob"
                                                    : "dataset '\(name)' has both \(sources[0]) and \(sources[1]); give one source")
            }
            let location = r.path(try r.string(m[sources[0]]!))
            let source: DatasetSpec.Source = sources[0] == "csv" ? .csv(location) : sources[0] == "folder" ? .folder(location) : .glob(location)
            datasets[name] = DatasetSpec(name: name, source: source,
                                         limit: try m["limit"].map { try r.int($0, min: 1) },
                                         sample: try m["sample"].map { try r.int($0, min: 1) },
                                         seed: try m["seed"].map { try r.int($0, min: 0) } ?? 0, slides: slides)
        }

        var models: [String: ModelSpec] = [:]
        for (name, node) in try r.namedMappings(try r.require(top, "models", in: root)) {
            let m = try r.mapping(node, allowed: ["onnx", "classes", "preprocessing", "cam_layer"], what: "model '\(name)'")
            let pNode = try r.require(m, "preprocessing", in: node)
            let p = try r.mapping(pNode, allowed: ["size", "scale", "mean", "std", "channel_order"], what: "preprocessing")
            let sizeNode = try r.require(p, "size", in: pNode)
            let size = try r.ints(sizeNode, min: 1)
            guard size.count == 2 else { throw r.error(sizeNode, "size must be [width, height]") }
            func triple(_ key: String, _ d: [Float]) throws -> [Float] {
                guard let n = p[key] else { return d }
                let v = try r.floats(n)
                guard v.count == 3 else { throw r.error(n, "\(key) must have 3 values (one per channel)") }
                return v
            }
            let std = try triple("std", [1, 1, 1])
            if let n = p["std"], std.contains(where: { $0 <= 0 }) { throw r.error(n, "std values must be > 0") }
            var order = Preprocessing.ChannelOrder.rgb
            if let n = p["channel_order"] {
                guard let o = Preprocessing.ChannelOrder(rawValue: try r.string(n)) else {
                    throw r.error(n, "channel_order must be rgb or bgr")
                }
                order = o
            }
            let classesNode = try r.require(m, "classes", in: node)
            let classes = try r.strings(classesNode)
            if classes.isEmpty { throw r.error(classesNode, "classes must not be empty") }
            models[name] = ModelSpec(
                name: name, onnx: r.path(try r.string(try r.require(m, "onnx", in: node))), classes: classes,
                preprocessing: Preprocessing(width: size[0], height: size[1],
                                             scale: try p["scale"].map { try r.float($0) } ?? 1.0 / 255.0,
                                             mean: try triple("mean", [0, 0, 0]), std: std, channelOrder: order),
                camLayer: try m["cam_layer"].map { try r.string($0) })
        }

        var explainers: [String: ExplainerSpec] = [:]
        if let en = top["explainers"] {
            for (name, node) in try r.namedMappings(en) {
                let m = try r.mapping(node, allowed: ["method", "params", "only"], what: "explainer '\(name)'")
                let methodNode = try r.require(m, "method", in: node)
                let method = try r.string(methodNode)
                var params: [String: String] = [:]
                if let pn = m["params"] {
                    for (k, v) in try r.namedMappings(pn) { params[k] = try r.scalarText(v) }
                }
                do {
                    _ = try ExplainerRegistry.make(method: method, parameters: params)
                } catch let e as ExplainerError {
                    throw r.error(m["params"] != nil && ExplainerRegistry.methods.contains(method) ? m["params"]! : methodNode, e.description)
                }
                var only: ExplainerScope?
                if let on = m["only"] {
                    let o = try r.mapping(on, allowed: ["class", "probability", "annotated"], what: "explainer '\(name)' only")
                    var scope = ExplainerScope()
                    if let c = o["class"] {
                        let text = try r.string(c)
                        guard models.values.contains(where: { $0.classes.contains(text) }) else {
                            throw r.error(c, "explainer '\(name)': only: class '\(text)' is not a class of any model")
                        }
                        scope.className = text
                    }
                    if let pn = o["probability"] {
                        let v = Double(try r.float(pn))
                        guard v >= 0, v <= 1 else { throw r.error(pn, "explainer '\(name)': only: probability is between 0 and 1") }
                        scope.probability = v
                    }
                    if let an = o["annotated"] { scope.annotated = try r.scalarText(an) == "true" }
                    guard scope.className != nil || scope.probability != nil || scope.annotated else {
                        throw r.error(on, "explainer '\(name)': only: needs class, probability or annotated: true")
                    }
                    only = scope
                }
                explainers[name] = ExplainerSpec(name: name, method: method, parameters: params, only: only)
            }
        }

        var stages: [StageSpec] = []
        for (name, node) in try r.namedMappings(try r.require(top, "stages", in: root)) {
            let m = try r.mapping(node, allowed: ["kind", "needs", "explainers", "target", "metrics", "out", "dataset", "model",
                                                                    "doctor_explainer", "templates", "page_size", "baseline", "moved",
                                                                    "top_k", "size", "neighbours", "max_clusters", "outside", "lift",
                                                                    "fixed", "region", "min_size", "margin"],
                                  what: "stage '\(name)'")
            let kindNode = try r.require(m, "kind", in: node)
            let kindText = try r.string(kindNode)
            guard let kind = StageSpec.Kind(rawValue: kindText) else {
                let all = StageSpec.Kind.allCases.map(\.rawValue)
                let hint = suggestion(for: kindText, among: all).map { " (did you mean '\($0)'?)" } ?? ""
                throw r.error(kindNode, "unknown stage kind '\(kindText)'\(hint); kinds: \(all.joined(separator: ", "))")
            }
            var target = TargetSpec.predicted
            if let t = m["target"] {
                let text = try r.scalarText(t)
                switch text {
                case "predicted": target = .predicted
                case "label": target = .label
                default:
                    guard let i = Int(text), i >= 0 else { throw r.error(t, "target must be predicted, label or a class index, got '\(text)'") }
                    target = .index(i)
                }
            }
            let chosen = try m["explainers"].map { try r.strings($0) } ?? []
            if let en = m["explainers"] {
                for e in chosen where explainers[e] == nil {
                    let hint = suggestion(for: e, among: Array(explainers.keys)).map { " (did you mean '\($0)'?)" } ?? ""
                    throw r.error(en, "stage '\(name)' uses explainer '\(e)', which is not defined under explainers:\(hint)")
                }
            }
            let metrics = try m["metrics"].map { try r.strings($0) } ?? []
            if let mn = m["metrics"] {
                for x in metrics where !MetricRegistry.names.contains(x) {
                    throw r.error(mn, "unknown metric '\(x)'; metrics: \(MetricRegistry.names.joined(separator: ", "))")
                }
            }
            /// `dataset:` / `model:`: one name or a list of names; empty (all of them) when absent.
            func references(_ key: String, _ known: [String]) throws -> [String] {
                guard let n = m[key] else { return [] }
                var names: [String] = []
                if case .sequence = n { names = try r.strings(n) } else { names = [try r.string(n)] }
                if names.isEmpty { throw r.error(n, "stage '\(name)': \(key) lists no names; leave it out to use every \(key)") }
                for v in names where !known.contains(v) {
                    let hint = suggestion(for: v, among: known).map { " (did you mean '\($0)'?)" } ?? ""
                    throw r.error(n, "no \(key) named '\(v)'\(hint); defined: \(known.sorted().joined(separator: ", "))")
                }
                return names
            }
            if kind == .compare {
                guard let mn = m["model"], case .sequence = mn, try r.strings(mn).count == 2 else {
                    throw r.error(m["model"] ?? node, "compare stage '\(name)' needs model: [A, B], the two models it compares")
                }
            }
            for key in ["baseline", "moved"] where m[key] != nil && kind != .drift {
                throw r.error(m[key]!, "stage '\(name)': \(key) applies to drift stages")
            }
            if let bn = m["baseline"] {
                // A baseline store must exist now: a missing one is found before any item runs.
                let text = try r.string(bn)
                if text != "previous" {
                    let path = r.path(baselineStore(text).path)
                    guard FileManager.default.fileExists(atPath: path) else {
                        throw r.error(bn, "drift stage '\(name)': baseline store \(path) does not exist (or write baseline: previous)")
                    }
                }
            }
            if m["top_k"] != nil && kind != .drift && kind != .compare {
                throw r.error(m["top_k"]!, "stage '\(name)': top_k applies to compare and drift stages")
            }
            let sprayKeys = ["size", "neighbours", "max_clusters", "outside", "lift", "fixed", "region", "min_size", "margin"]
            for key in sprayKeys where m[key] != nil && kind != .spray {
                throw r.error(m[key]!, "stage '\(name)': \(key) applies to spray stages")
            }
            var spray = SpRAy.Settings()
            if kind == .spray {
                if let n = m["size"] { spray.size = try r.int(n, min: 2, max: 64) }
                if let n = m["neighbours"] { spray.neighbours = try r.int(n, min: 1, max: 1000) }
                if let n = m["max_clusters"] { spray.maxClusters = try r.int(n, min: 1, max: 50) }
                if let n = m["min_size"] { spray.minSize = try r.int(n, min: 1) }
                if let n = m["margin"] { spray.margin = try r.int(n, min: 0, max: 16) }
                if let n = m["lift"] {
                    spray.lift = Double(try r.float(n))
                    guard spray.lift > 0 else { throw r.error(n, "stage '\(name)': lift must be > 0") }
                }
                for (key, set) in [("outside", { (v: Double) in spray.outside = v }), ("fixed", { spray.fixed = $0 }),
                                   ("region", { spray.regionArea = $0 })] as [(String, (Double) -> Void)] {
                    guard let n = m[key] else { continue }
                    let v = Double(try r.float(n))
                    guard v > 0, v <= 1 else { throw r.error(n, "stage '\(name)': \(key) is a share: 0 < \(key) <= 1") }
                    set(v)
                }
                if let dn = m["dataset"] {
                    throw r.error(dn, "stage '\(name)': a spray stage clusters every heatmap of its explainers; leave out dataset")
                }
            }
            if kind == .compare, let dn = m["dataset"] {
                throw r.error(dn, "stage '\(name)': a compare stage compares every item both models explained; leave out dataset")
            }
            if [.report, .evaluate, .drift].contains(kind), m["dataset"] != nil || m["model"] != nil {
                let key = m["dataset"] != nil ? "dataset" : "model"
                throw r.error(m[key]!, "stage '\(name)': \(key) applies to predict and explain stages only; this \(kind.rawValue) "
                              + "stage covers what the stages it needs produced")
            }
            if let dn = m["doctor_explainer"] {
                let e = try r.string(dn)
                guard explainers[e] != nil else {
                    throw r.error(dn, "doctor_explainer '\(e)' is not defined under explainers:"
                                  + (suggestion(for: e, among: Array(explainers.keys)).map { " (did you mean '\($0)'?)" } ?? ""))
                }
            }
            if let tn = m["templates"] {
                let dir = r.path(try r.string(tn))
                var isDirectory: ObjCBool = false
                guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDirectory), isDirectory.boolValue else {
                    throw r.error(tn, "templates folder \(dir) does not exist")
                }
            }
            let (line, column) = (node.mark?.line ?? 1, node.mark?.column ?? 1)
            stages.append(StageSpec(
                name: name, kind: kind, needs: try m["needs"].map { try r.strings($0) } ?? [],
                explainers: chosen, target: target, metrics: metrics,
                out: try m["out"].map { r.path(try r.string($0)) },
                datasets: try references("dataset", Array(datasets.keys)), models: try references("model", Array(models.keys)),
                line: line, column: column,
                doctorExplainer: try m["doctor_explainer"].map { try r.string($0) },
                templates: try m["templates"].map { r.path(try r.string($0)) },
                pageSize: try m["page_size"].map { try r.int($0, min: 1) } ?? 100,
                baseline: try m["baseline"].map { try r.string($0) } ?? (kind == .drift ? "previous" : nil),
                moved: try m["moved"].map { Double(try r.float($0)) } ?? 0.5,
                topK: try m["top_k"].map { n in
                    let v = Double(try r.float(n))
                    guard v > 0, v <= 1 else { throw r.error(n, "top_k is a share of the pixels: 0 < top_k <= 1") }
                    return v
                } ?? 0.1,
                spray: spray))
        }
        // One explainer, one target: heatmaps, metrics and stitched maps are stored per explainer
        // name, so two targets of one explainer would overwrite each other's metrics.
        var targetOf: [String: (TargetSpec, String)] = [:]
        for stage in stages where stage.kind == .explain {
            for name in stage.explainers.isEmpty ? explainers.keys.sorted() : stage.explainers {
                if let (target, other) = targetOf[name], target != stage.target {
                    throw ManifestError(file: file, line: stage.line, column: stage.column,
                                        message: "explainer '\(name)' has target \(target) in stage '\(other)' and \(stage.target) in stage "
                                            + "'\(stage.name)'; define it twice under explainers: with two names, one per target")
                }
                targetOf[name] = (stage.target, stage.name)
            }
        }
        // Two models on one ONNX file would share its hash, the store's identity of a model.
        var byFile: [String: String] = [:]
        for name in models.keys.sorted() {
            let file = models[name]!.onnx
            if let other = byFile[file] {
                throw r.error(top["models"]!, "models '\(other)' and '\(name)' name the same file \(file); a model is identified by its "
                              + "file's SHA-256, so give each model its own file (a copy, if the preprocessing differs)")
            }
            byFile[file] = name
        }

        var gates: [GateSpec] = []
        if let gn = top["gates"] {
            let evaluated = Set(stages.filter { $0.kind == .evaluate }.flatMap(\.metrics))
            for (name, node) in try r.namedMappings(gn) {
                let m = try r.mapping(node, allowed: ["metric", "explainer", "model", "min", "max"], what: "gate '\(name)'")
                let metricNode = try r.require(m, "metric", in: node)
                let metric = try r.string(metricNode)
                let diagnostics = MetricRegistry.diagnostics.map(\.name)
                let known = GateSpec.runMetrics + MetricRegistry.names.flatMap(MetricRegistry.storedNames) + diagnostics
                    + GateSpec.driftMetrics + GateSpec.sprayMetrics + GateSpec.slideMetrics
                guard known.contains(metric) else {
                    let hint = suggestion(for: metric, among: known).map { " (did you mean '\($0)'?)" } ?? ""
                    throw r.error(metricNode, "gate '\(name)': unknown metric '\(metric)'\(hint); metrics: \(known.joined(separator: ", "))")
                }
                var explainer: String?
                if let en = m["explainer"] {
                    let e = try r.string(en)
                    guard explainers[e] != nil else {
                        let hint = suggestion(for: e, among: Array(explainers.keys)).map { " (did you mean '\($0)'?)" } ?? ""
                        throw r.error(en, "gate '\(name)' uses explainer '\(e)', which is not defined under explainers:\(hint)")
                    }
                    explainer = e
                }
                var model: String?
                if let mn = m["model"] {
                    let v = try r.string(mn)
                    guard models[v] != nil else {
                        let hint = suggestion(for: v, among: Array(models.keys)).map { " (did you mean '\($0)'?)" } ?? ""
                        throw r.error(mn, "gate '\(name)' judges model '\(v)', which is not defined under models:\(hint)")
                    }
                    guard metric != "failures" else { throw r.error(mn, "gate '\(name)': failures counts the whole run; leave out model") }
                    model = v
                }
                if !GateSpec.runMetrics.contains(metric) {
                    guard explainer != nil else { throw r.error(node, "gate '\(name)': metric '\(metric)' is per explainer; add explainer: NAME") }
                    if GateSpec.driftMetrics.contains(metric) {
                        let driftStages = stages.filter { $0.kind == .drift }.count
                        guard driftStages > 0 else {
                            throw r.error(metricNode, "gate '\(name)': no drift stage measures '\(metric)'; add a stage of kind drift")
                        }
                        guard driftStages == 1 else {
                            throw r.error(metricNode, "gate '\(name)': drift gates need exactly one drift stage; the manifest has \(driftStages)")
                        }
                    } else if GateSpec.sprayMetrics.contains(metric) {
                        let covering = stages.filter { $0.kind == .spray && ($0.explainers.isEmpty || $0.explainers.contains(explainer!)) }.count
                        guard covering > 0 else {
                            throw r.error(metricNode, "gate '\(name)': no spray stage clusters the heatmaps of '\(explainer!)'; add a stage of kind spray")
                        }
                        guard covering == 1 else {
                            throw r.error(metricNode, "gate '\(name)': \(covering) spray stages cluster the heatmaps of '\(explainer!)'; a spray_flags gate needs exactly one")
                        }
                    } else if GateSpec.slideMetrics.contains(metric) {
                        guard datasets.values.contains(where: { $0.slides != nil }) else {
                            throw r.error(metricNode, "gate '\(name)': '\(metric)' is measured on slides; the manifest has no dataset of kind slides")
                        }
                    } else if diagnostics.contains(metric) {
                        let method = explainers[explainer!]!.method
                        guard ["lime", "rise"].contains(method) else {
                            throw r.error(metricNode, "gate '\(name)': '\(metric)' is measured by LIME and RISE heatmaps; explainer '\(explainer!)' is \(method)")
                        }
                        guard metric != "fit_r2" || method == "lime" else {
                            throw r.error(metricNode, "gate '\(name)': fit_r2 is LIME's; explainer '\(explainer!)' is \(method)")
                        }
                    } else if !evaluated.flatMap(MetricRegistry.storedNames).contains(metric) {
                        throw r.error(metricNode, "gate '\(name)': no evaluate stage computes '\(metric)'; add it to an evaluate stage's metrics")
                    } else {
                        // The explainer's heatmaps must reach an evaluate stage that computes it: one
                        // whose needs name no explain stage (it takes all), or one of the explainer's.
                        let kinds = Dictionary(stages.map { ($0.name, $0.kind) }, uniquingKeysWith: { a, _ in a })
                        let explaining = Set(stages.filter { $0.kind == .explain && ($0.explainers.isEmpty || $0.explainers.contains(explainer!)) }.map(\.name))
                        let reaching = stages.filter { s in
                            guard s.kind == .evaluate, s.metrics.flatMap(MetricRegistry.storedNames).contains(metric) else { return false }
                            let named = s.needs.filter { kinds[$0] == .explain }
                            return named.isEmpty || !explaining.isDisjoint(with: named)
                        }
                        guard !reaching.isEmpty else {
                            throw r.error(metricNode, "gate '\(name)': no evaluate stage that computes '\(metric)' needs an explain stage of '\(explainer!)'")
                        }
                    }
                }
                guard (m["min"] == nil) != (m["max"] == nil) else {
                    throw r.error(node, "gate '\(name)' needs exactly one of min or max")
                }
                let (comparison, boundNode) = m["min"].map { (GateSpec.Comparison.atLeast, $0) } ?? (.atMost, m["max"]!)
                gates.append(GateSpec(name: name, metric: metric, explainer: explainer, model: model, comparison: comparison,
                                      threshold: Double(try r.float(boundNode)),
                                      line: node.mark?.line ?? 1, column: node.mark?.column ?? 1))
            }
        }
        let manifest = Manifest(file: file, pipeline: pipeline, datasets: datasets, models: models,
                                explainers: explainers, stages: stages, gates: gates, marks: marks)
        _ = try Plan(manifest) // checks needs and cycles
        return manifest
    }

    static func yamlError(_ e: YamlError, file: String) -> ManifestError {
        switch e {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _), .composer(_, let problem, let mark, _):
            return ManifestError(file: file, line: mark.line, column: mark.column, message: "YAML syntax: \(problem)")
        default:
            return ManifestError(file: file, line: 1, column: 1, message: "YAML: \(e)")
        }
    }
}

/// Typed access to YAML nodes; every failure is located at the node.
struct Reader {
    let file: String
    let base: String
    var environment: [String: String] = ProcessInfo.processInfo.environment

    func error(_ node: Node, _ message: String) -> ManifestError {
        ManifestError(file: file, line: node.mark?.line ?? 1, column: node.mark?.column ?? 1, message: message)
    }

    /// A mapping whose keys must be among `allowed`; returns value nodes by key.
    func mapping(_ node: Node, allowed: [String], what: String) throws -> [String: Node] {
        guard case .mapping(let map) = node else { throw error(node, "\(what) must be a mapping of key: value") }
        var out: [String: Node] = [:]
        for (k, v) in map {
            let key = try string(k)
            guard allowed.contains(key) else {
                let hint = suggestion(for: key, among: allowed).map { " (did you mean '\($0)'?)" } ?? ""
                throw error(k, "unknown key '\(key)' in \(what)\(hint); allowed: \(allowed.joined(separator: ", "))")
            }
            if out[key] != nil { throw error(k, "duplicate key '\(key)' in \(what)") }
            out[key] = v
        }
        return out
    }

    /// A mapping from user-chosen names to nodes, in file order.
    func namedMappings(_ node: Node) throws -> [(String, Node)] {
        guard case .mapping(let map) = node else { throw error(node, "expected a mapping of name: ...") }
        var seen = Set<String>()
        return try map.map { k, v in
            let name = try string(k)
            if !seen.insert(name).inserted { throw error(k, "duplicate name '\(name)'") }
            return (name, v)
        }
    }

    func require(_ m: [String: Node], _ key: String, in parent: Node) throws -> Node {
        guard let n = m[key] else { throw error(parent, "missing required key '\(key)'") }
        return n
    }

    /// A scalar's text with `${VAR}` (or `${VAR:-default}`) replaced from the environment; an
    /// unset variable without a default is an error at the value. `$${` stays a literal `${`.
    func scalarText(_ node: Node) throws -> String {
        guard case .scalar(let s) = node else { throw error(node, "expected a single value") }
        return try interpolate(s.string, at: node)
    }

    func interpolate(_ text: String, at node: Node) throws -> String {
        guard text.contains("${") else { return text }
        var out = ""
        var rest = Substring(text)
        while let open = rest.range(of: "${") {
            if rest[..<open.lowerBound].hasSuffix("$") {
                out += rest[..<rest.index(before: open.lowerBound)] + "${"
                rest = rest[open.upperBound...]
                continue
            }
            out += rest[..<open.lowerBound]
            guard let close = rest[open.upperBound...].firstIndex(of: "}") else {
                throw error(node, "unclosed ${ in '\(text)'")
            }
            let body = rest[open.upperBound..<close]
            let parts = body.split(separator: ":-", maxSplits: 1, omittingEmptySubsequences: false)
            let name = String(parts[0])
            guard !name.isEmpty, name.allSatisfy({ $0 == "_" || $0.isLetter || $0.isNumber }), !name.first!.isNumber else {
                throw error(node, "'${\(body)}' is not a variable name (letters, digits, _)")
            }
            if let value = environment[name] {
                out += value
            } else if parts.count == 2 {
                out += parts[1]
            } else {
                throw error(node, "environment variable \(name) is not set (write ${\(name):-default} for a default)")
            }
            rest = rest[rest.index(after: close)...]
        }
        return out + rest
    }

    func string(_ node: Node) throws -> String {
        let s = try scalarText(node)
        if s.isEmpty { throw error(node, "expected a non-empty string") }
        return s
    }

    func int(_ node: Node, min lo: Int = Int.min, max hi: Int = Int.max) throws -> Int {
        let s = try scalarText(node)
        guard let v = Int(s) else { throw error(node, "expected an integer, got '\(s)'") }
        guard v >= lo else { throw error(node, "must be ≥ \(lo), got \(v)") }
        guard v <= hi else { throw error(node, "must be ≤ \(hi), got \(v)") }
        return v
    }

    func float(_ node: Node) throws -> Float {
        let s = try scalarText(node)
        guard let v = Float(s), v.isFinite else { throw error(node, "expected a number, got '\(s)'") }
        return v
    }

    func sequence(_ node: Node) throws -> [Node] {
        guard case .sequence(let seq) = node else { throw error(node, "expected a list [a, b, ...]") }
        return Array(seq)
    }

    func strings(_ node: Node) throws -> [String] { try sequence(node).map { try string($0) } }
    func ints(_ node: Node, min lo: Int = Int.min) throws -> [Int] { try sequence(node).map { try int($0, min: lo) } }
    func floats(_ node: Node) throws -> [Float] { try sequence(node).map { try float($0) } }

    /// A path relative to the manifest's folder, made absolute.
    func path(_ p: String) -> String {
        if p.hasPrefix("/") { return URL(fileURLWithPath: p).standardized.path }
        return URL(fileURLWithPath: base).appendingPathComponent(p).standardized.path
    }
}
