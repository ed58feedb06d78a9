import Foundation
import Imaging
import Mustache
import Store

extension ReportWriter {
    /// `spray.html` (docs/report.md): per spray stage, model, explainer and class, the eigenvalues
    /// that chose the number of clusters, the 2-D spectral embedding coloured by cluster, and per
    /// cluster its size, the Clever-Hans test, its mean heatmap and a montage (the medoid first,
    /// then the members nearest it in the embedding). Returns the index's summary rows.
    func writeSprayPage(templates: [String: MustacheTemplate], common: [String: Any], modelNames: [String: String],
                        classNames: [String: [String]], items: [ItemRecord], overlayThumbs: [Int64: [String: String]],
                        thumbs: [Int64: String], label: (String, String) -> String, used: inout Set<String>) throws -> [[String: Any]] {
        let summaries = try store.clusterSummaries(run: runID)
        guard !summaries.isEmpty else { return [] }
        let rows = try store.clusters(run: runID)
        let byID = Dictionary(items.compactMap { i in i.id.map { ($0, i) } }, uniquingKeysWith: { a, _ in a })
        struct Key: Hashable { let name: String; let model: String; let explainer: String; let cls: Int }
        let members = Dictionary(grouping: rows, by: { Key(name: $0.name, model: $0.modelHash, explainer: $0.explainer, cls: $0.classIndex) })
        var groups: [[String: Any]] = []
        var indexRows: [[String: Any]] = []
        let grouped = Dictionary(grouping: summaries, by: { Key(name: $0.name, model: $0.modelHash, explainer: $0.explainer, cls: $0.classIndex) })
        for key in grouped.keys.sorted(by: { ($0.name, modelNames[$0.model] ?? $0.model, $0.explainer, $0.cls)
            < ($1.name, modelNames[$1.model] ?? $1.model, $1.explainer, $1.cls) }) {
            let clusters = grouped[key]!.sorted { $0.cluster < $1.cluster }
            let points = members[key] ?? []
            let names = classNames[key.model] ?? []
            let className = key.cls < names.count ? names[key.cls] : "class \(key.cls)"
            let shown = label(key.explainer, key.model)
            let anchor = "spray-\(safe(key.name))-\(safe(shown))-\(key.cls)"
            let flagged = clusters.filter(\.flagged).count
            let scatter = SVG.scatter(points.map { p in
                (x: p.x, y: p.y, group: p.cluster, flagged: clusters.first { $0.cluster == p.cluster }?.flagged ?? false,
                 title: byID[p.itemID].map { URL(fileURLWithPath: $0.path).lastPathComponent } ?? "",
                 href: byID[p.itemID]?.tile == nil ? "items/\(p.itemID).html" : nil)
            }, title: "Spectral embedding of the \(points.count) heatmaps (colour: cluster)")
            // The eigengap's choice, from the eigenvalues themselves (k-means may leave fewer clusters).
            let values = clusters.first?.eigenvalues ?? []
            var chosen = 1, widest = -Double.infinity
            for i in 1..<max(1, values.count) where values[i] - values[i - 1] > widest + 1e-12 {
                widest = values[i] - values[i - 1]
                chosen = i
            }
            let eigen = SVG.eigenvalues(values, chosen: chosen)
            var cards: [[String: Any]] = []
            for c in clusters {
                let mine = points.filter { $0.cluster == c.cluster }
                let medoid = mine.first { $0.itemID == c.medoidItem }
                let nearest = mine.filter { $0.itemID != c.medoidItem }.sorted { a, b in
                    guard let m = medoid else { return false }
                    return hypot(a.x - m.x, a.y - m.y) < hypot(b.x - m.x, b.y - m.y)
                }
                let montage = ([medoid].compactMap { $0 } + nearest.prefix(7)).map { p -> [String: Any] in
                    let item = byID[p.itemID]
                    let name = item.map { URL(fileURLWithPath: $0.path).lastPathComponent } ?? "item \(p.itemID)"
                    return ["thumb": orFalse(overlayThumbs[p.itemID]?[shown] ?? thumbs[p.itemID]), "caption": p.itemID == c.medoidItem ? "medoid: \(name)" : name,
                            "href": orFalse(item?.tile == nil ? "items/\(p.itemID).html" : nil)]
                }
                // Named by what it shows (a rerun into the same folder must not keep an old picture).
                let content = ReportWriter.fnv1a("\(c.meanMap) \(c.region) \(c.grid) \(options.colormap.rawValue)")
                let mean = try writeOnce("images/spray-\(content).png", &used) { path in
                    try Codecs.writePNG(meanMapImage(c.meanMap, grid: c.grid, region: Set(c.region)), to: path)
                }
                cards.append(["cluster": c.cluster, "size": c.size, "flagged": c.flagged, "reasons": c.reasons.joined(separator: "; "),
                              "place": c.place, "color": SVG.clusterColor(c.cluster),
                              "outside": c.outsideShare.map { percent($0) } ?? "no masks",
                              "lift": c.objectLift.map { String(format: "%.2f×", $0) } ?? "—",
                              "regionShare": percent(c.regionShare), "mean": mean, "montage": montage])
            }
            groups.append(["anchor": anchor, "stage": key.name, "explainer": shown, "className": className, "count": points.count,
                           "clusters": clusters.count, "neighbours": clusters.first?.neighbours ?? 0, "flaggedCount": flagged,
                           "anyFlagged": flagged > 0, "scatter": scatter, "eigen": eigen, "cards": cards])
            indexRows.append(["href": "spray.html#\(anchor)", "stage": key.name, "explainer": shown, "className": className,
                              "count": points.count, "clusters": clusters.count, "flagged": flagged, "anyFlagged": flagged > 0])
        }
        var context = common
        context.merge(["title": "Candela: spectral relevance analysis", "groups": groups]) { _, new in new }
        try render(templates["spray"]!, context, to: "spray.html", &used)
        return indexRows
    }

    /// A 64-bit FNV-1a digest in hex: a file name for derived pictures (not a security hash).
    static func fnv1a(_ text: String) -> String {
        var h: UInt64 = 0xcbf29ce484222325
        for b in text.utf8 { h = (h ^ UInt64(b)) &* 0x100000001b3 }
        return String(format: "%016llx", h)
    }

    /// A cluster's mean heatmap as an image: each grid cell 8 × 8 pixels in the report's
    /// colormap (scaled to the map's maximum), the region's cells outlined in white.
    func meanMapImage(_ values: [Float], grid: Int, region: Set<Int>) -> Image {
        let cell = 8, side = grid * cell
        let top = max(values.max() ?? 0, 1e-12)
        var pixels = [UInt8](repeating: 0, count: side * side * 3)
        for y in 0..<side {
            for x in 0..<side {
                let (gx, gy) = (x / cell, y / cell)
                let index = gy * grid + gx
                var c = options.colormap.color(values.indices.contains(index) ? values[index] / top : 0)
                // The region's edge: a cell of the region whose neighbour is not in it.
                if region.contains(index) {
                    let (ix, iy) = (x % cell, y % cell)
                    let edge = (ix == 0 && !region.contains(index - 1)) || (ix == cell - 1 && !region.contains(index + 1))
                        || (iy == 0 && !region.contains(index - grid)) || (iy == cell - 1 && !region.contains(index + grid))
                    if edge || (ix == 0 && gx == 0) || (iy == 0 && gy == 0) { c = (255, 255, 255) }
                }
                let o = (y * side + x) * 3
                (pixels[o], pixels[o + 1], pixels[o + 2]) = c
            }
        }
        return Image(width: side, height: side, channels: 3, pixels: pixels)
    }
}
