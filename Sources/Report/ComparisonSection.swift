import Foundation
import Store

extension ReportWriter {
    /// The index's comparison section: per compare or drift stage and explainer, how many items
    /// were compared and their mean Spearman ρ, SSIM and top-k intersection, the share of same
    /// predictions (compare) or of moved items (drift: Spearman ρ below the stage's `moved`); then the items whose
    /// heatmaps differ most (lowest SSIM).
    func comparisonSections(items: [ItemRecord], modelNames: [String: String], thumbs: [Int64: String]) throws -> [[String: Any]] {
        let rows = try store.comparisons(run: runID)
        guard !rows.isEmpty else { return [] }
        let byID = Dictionary(items.compactMap { i in i.id.map { ($0, i) } }, uniquingKeysWith: { a, _ in a })
        func mean(_ v: [Double]) -> String { v.isEmpty ? "—" : String(format: "%.3f", v.reduce(0, +) / Double(v.count)) }
        var sections: [[String: Any]] = []
        for (name, stageRows) in Dictionary(grouping: rows, by: \.name).sorted(by: { $0.key < $1.key }) {
            let kind = stageRows[0].kind
            let settings = options.comparisonSettings[name] ?? (moved: 0.5, topK: 0.1)
            let models = kind == "models"
                ? "\(modelNames[stageRows[0].modelA] ?? "?") vs \(modelNames[stageRows[0].modelB] ?? "?")"
                : "against \(stageRows[0].reference ?? "the baseline")"
            var table: [[String: Any]] = []
            for (explainer, r) in Dictionary(grouping: stageRows, by: \.explainer).sorted(by: { $0.key < $1.key }) {
                let same = r.compactMap(\.samePrediction)
                let moved = r.compactMap(\.spearman).filter { $0 < settings.moved }.count
                table.append(["explainer": explainer, "n": r.count, "spearman": mean(r.compactMap(\.spearman)),
                              "ssim": mean(r.compactMap(\.ssim)), "topk": mean(r.compactMap(\.topK)),
                              "same": same.isEmpty ? "—" : percent(Double(same.filter { $0 }.count) / Double(same.count)),
                              "moved": "\(moved)"])
            }
            let worst = stageRows.filter { $0.ssim != nil }.sorted { $0.ssim! < $1.ssim! }.prefix(12).compactMap { c -> [String: Any]? in
                guard let item = byID[c.itemID] else { return nil }
                return ["name": URL(fileURLWithPath: item.path).lastPathComponent, "href": "items/\(c.itemID).html",
                        "thumb": orFalse(thumbs[c.itemID]), "explainer": c.explainer, "ssim": String(format: "%.3f", c.ssim!),
                        "spearman": c.spearman.map { String(format: "%.3f", $0) } ?? "—"]
            }
            sections.append(["name": name, "title": kind == "models" ? "Model comparison '\(name)': \(models)" : "Drift '\(name)' \(models)",
                             "isDrift": kind == "baseline", "rows": table, "worst": Array(worst),
                             "moved": String(format: "%g", settings.moved), "topShare": percent(settings.topK)])
        }
        return sections
    }
}
