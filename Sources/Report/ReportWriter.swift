import Foundation
import Imaging
import Mustache
import Store

/// A method card as the report shows it (filled by the pipeline from the explainer registry,
/// since Report does not import Explainers).
public struct ReportCard: Sendable {
    public let title: String
    public let meaning: String
    public let cost: String
    public let limits: String

    public init(title: String, meaning: String, cost: String, limits: String) {
        self.title = title
        self.meaning = meaning
        self.cost = cost
        self.limits = limits
    }
}

/// Writes a static HTML report for one run from the store: `index.html` plus `images/`.
///
/// Everything shown comes from the store, except the original images, which are re-read from
/// the paths the store records and re-encoded as PNG so the folder stands alone (no network,
/// no links back into the dataset). Mustache escapes every value, so file names and labels
/// reach the page as text.
public struct ReportWriter {
    let store: Store
    let runID: Int64
    let directory: String
    let cards: [String: ReportCard]
    let colormap: Colormap

    public init(store: Store, runID: Int64, directory: String, cards: [String: ReportCard] = [:], colormap: Colormap = .viridis) {
        self.store = store
        self.runID = runID
        self.directory = directory
        self.cards = cards
        self.colormap = colormap
    }

    /// Writes the report; returns the path of `index.html`.
    @discardableResult
    public func write() throws -> String {
        let fm = FileManager.default
        let imagesDir = URL(fileURLWithPath: directory).appendingPathComponent("images")
        // The report shows one run: images of an earlier report in the same folder go.
        try? fm.removeItem(at: imagesDir)
        try fm.createDirectory(at: imagesDir, withIntermediateDirectories: true)
        guard let run = try store.runs().first(where: { $0.id == runID }) else {
            throw StoreError("\(store.path): no run \(runID)")
        }
        let items = try store.items(run: runID)
        let predictions = Dictionary(try store.predictions(run: runID).map { ($0.itemID, $0) }, uniquingKeysWith: { a, _ in a })
        let attributions = Dictionary(grouping: try store.attributions(run: runID), by: \.itemID)
        let metrics = try store.metrics(run: runID)
        let failures = try store.failures(run: runID)
        let models = try store.models()
        let explainerNames = Array(Set(attributions.values.flatMap { $0.map(\.explainer) })).sorted()

        var itemViews: [[String: Any]] = []
        var correct = 0, labelled = 0
        for item in items {
            guard let id = item.id else { continue }
            let name = URL(fileURLWithPath: item.path).lastPathComponent
            var view: [String: Any] = ["name": name, "label": item.label ?? "—"]
            let original: Image? = try? Codecs.decode(path: item.path)
            if let original {
                let file = "images/item-\(id).png"
                try Codecs.writePNG(original, to: "\(directory)/\(file)")
                view["original"] = file
            }
            if let p = predictions[id] {
                view["prediction"] = p.className
                view["probability"] = String(format: "%.3f", p.probability)
                if let label = item.label {
                    labelled += 1
                    if label == p.className { correct += 1 } else { view["wrong"] = true }
                }
            }
            var overlays: [[String: Any]] = []
            for a in (attributions[id] ?? []).sorted(by: { $0.explainer < $1.explainer }) {
                var o: [String: Any] = ["explainer": a.explainer, "target": a.target]
                if let original {
                    let file = "images/item-\(id)-\(safe(a.explainer)).png"
                    let blended = Overlay.blend(image: original, heatmap: a.heatmap, width: a.width, height: a.height, colormap: colormap)
                    try Codecs.writePNG(blended, to: "\(directory)/\(file)")
                    o["file"] = file
                }
                if let m = metrics.first(where: { $0.itemID == id && $0.explainer == a.explainer && $0.name == "pointing_game" }),
                   let v = m.value {
                    o["lesion"] = v >= 0.5 ? "peak on lesion" : "peak off lesion"
                }
                overlays.append(o)
            }
            view["overlays"] = overlays
            itemViews.append(view)
        }

        var pointingRows: [[String: Any]] = []
        for e in explainerNames {
            func scores(_ name: String) -> [Double] {
                metrics.filter { $0.explainer == e && $0.name == name }.compactMap(\.value)
            }
            let values = scores("pointing_game"), strict = scores("pointing_game_strict")
            guard !values.isEmpty else { continue }
            let hits = values.filter { $0 >= 0.5 }.count, strictHits = strict.filter { $0 >= 0.5 }.count
            pointingRows.append(["explainer": e, "hits": hits, "total": values.count, "strictHits": strictHits,
                                 "fraction": String(format: "%.0f%%", 100 * Double(hits) / Double(values.count)),
                                 "strictFraction": String(format: "%.0f%%", 100 * Double(strictHits) / Double(max(strict.count, 1)))])
        }
        // Mean of every other metric per explainer, in a fixed column order, with the sanity verdict.
        let metricOrder = ["energy_pointing_game", "outside_tissue", "deletion_auc", "insertion_auc", "randomization",
                           "max_sensitivity", "agreement"]
        let present = metricOrder.filter { name in metrics.contains { $0.name == name && $0.value != nil } }
        var metricRows: [[String: Any]] = []
        for e in explainerNames where !present.isEmpty {
            var cells: [[String: Any]] = []
            var row: [String: Any] = ["explainer": e]
            for name in present {
                let values = metrics.filter { $0.explainer == e && $0.name == name }.compactMap(\.value)
                let mean = values.isEmpty ? nil : values.reduce(0, +) / Double(values.count)
                cells.append(["value": mean.map { String(format: "%.3f", $0) } ?? "—", "n": values.count])
                if name == "randomization", let mean {
                    row["sanity"] = mean < ReportWriter.sanityThreshold ? "passes" : "fails"
                    if mean >= ReportWriter.sanityThreshold { row["sanityFails"] = true }
                }
            }
            row["cells"] = cells
            metricRows.append(row)
        }
        let gates = try store.gateResults(run: runID).map { g -> [String: Any] in
            ["name": g.name, "subject": g.explainer.map { "\(g.metric) of \($0)" } ?? g.metric,
             "value": g.value.map { String(format: "%.4g", $0) } ?? "no value",
             "rule": "\(g.comparison) \(String(format: "%g", g.threshold))", "verdict": g.passed ? "PASS" : "FAIL", "failed": !g.passed]
        }
        let cardViews: [[String: Any]] = explainerNames.compactMap { e in
            guard let c = cards[e] else { return nil }
            return ["name": e, "title": c.title, "meaning": c.meaning, "cost": c.cost, "limits": c.limits]
        }
        let model = models.first { m in predictions.values.contains { $0.modelHash == m.hash } }
        let context: [String: Any] = [
            "pipeline": run.pipeline,
            "started": run.startedAt,
            "status": run.status,
            "version": run.candelaVersion,
            "model": model?.name ?? "?",
            "modelHash": String((model?.hash ?? "").prefix(12)),
            "itemCount": items.count,
            "accuracy": labelled > 0 ? String(format: "%d / %d correct (%.1f%%)", correct, labelled, 100 * Double(correct) / Double(labelled)) : "no labels",
            "explainers": explainerNames.joined(separator: ", "),
            "pointing": pointingRows,
            "hasPointing": !pointingRows.isEmpty,
            "cards": cardViews,
            "metricNames": present.map { ["name": $0, "help": ReportWriter.metricHelp[$0] ?? ""] },
            "metricRows": metricRows,
            "hasMetrics": !metricRows.isEmpty,
            "hasSanity": present.contains("randomization"),
            "gates": gates,
            "hasGates": !gates.isEmpty,
            "gateVerdict": gates.contains { ($0["failed"] as? Bool) == true } ? "FAIL" : "PASS",
            "gatesFailed": gates.contains { ($0["failed"] as? Bool) == true },
            "items": itemViews,
            "failures": failures.map { ["path": $0.itemPath, "stage": $0.stage, "message": $0.message] },
            "hasFailures": !failures.isEmpty,
            "colormap": colormap.rawValue,
        ]
        let template = try MustacheTemplate(string: Templates.index)
        let html = template.render(context)
        let index = "\(directory)/index.html"
        try Data(html.utf8).write(to: URL(fileURLWithPath: index))
        return index
    }

    /// Mirrors `Evaluation.sanityThreshold` (Report does not import Explainers).
    static let sanityThreshold = 0.5

    /// One line per metric for the table's header tooltips and legend.
    static let metricHelp: [String: String] = [
        "energy_pointing_game": "share of the heatmap's mass on the lesion (higher is better)",
        "outside_tissue": "share of the mass outside the tissue mask (lower is better)",
        "deletion_auc": "probability while deleting pixels in heatmap order (lower is better)",
        "insertion_auc": "probability while inserting pixels into a blurred image (higher is better)",
        "randomization": "rank correlation with heatmaps of randomized models (lower is better; < 0.5 passes)",
        "max_sensitivity": "largest relative change under ±0.02 input noise (lower is better)",
        "agreement": "rank correlation with the other explainers (context)",
    ]

    /// A file-name-safe form of an explainer name.
    func safe(_ s: String) -> String {
        String(s.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "_" })
    }
}
