import Foundation
import Imaging
import Slides
import Store

/// A run's slides as QuPath-readable GeoJSON (docs/slides.md, "QuPath"): one FeatureCollection
/// per slide, in level-0 pixel coordinates. Tissue pieces are annotations (their outline traced
/// on the tissue mask) classified by their verdict; tiles are detections classified by their
/// predicted class, with measurements QuPath shows as a measurement map: the probability of
/// every class, the tissue share, and each explainer's mean raw relevance over the tile.
public enum QuPathExport {
    /// Colours of classes by index (Okabe and Ito's colour-blind-safe palette).
    static let palette: [[Int]] = [[0, 158, 115], [213, 94, 0], [0, 114, 178], [230, 159, 0], [204, 121, 167], [86, 180, 233],
                                   [240, 228, 66], [0, 0, 0]]

    /// Writes `DIR/<id>-<slide file name>.geojson` for every slide of run `runID`; returns the
    /// files. `model`: the model whose predictions classify (default: the first by name).
    public static func write(store: Store, runID: Int64, directory: String, model: String? = nil) throws -> [String] {
        let slides = try store.slides(run: runID)
        guard !slides.isEmpty else { throw StoreError("\(store.path): run \(runID) has no slides") }
        let predictions = try store.predictions(run: runID)
        let hashes = Set(predictions.map(\.modelHash))
        let models = try store.models().filter { hashes.contains($0.hash) }
        guard let chosen = model.map({ name in models.first { $0.name == name } }) ?? models.first else {
            throw StoreError("\(store.path): run \(runID) has no model named '\(model ?? "")'; it has \(models.map(\.name).joined(separator: ", "))")
        }
        let classes = chosen.classes
        let byItem = Dictionary(predictions.filter { $0.modelHash == chosen.hash }.map { ($0.itemID, $0) }, uniquingKeysWith: { a, _ in a })
        let items = try store.items(run: runID)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var files: [String] = []
        for slide in slides {
            guard let slideID = slide.id else { continue }
            var features: [[String: Any]] = []
            // Tissue pieces: outlines on the mask, matched to the stored pieces by their boxes.
            let mask = try Codecs.decode(slide.tissueMask, as: .gray)
            let (labels, count) = TissueMask.components(mask.pixels.map { $0 > 127 }, mask.width, mask.height)
            let maskScale = Double(slide.width) / Double(mask.width)
            let verdicts = try store.slideVerdicts(slide: slideID).filter { $0.modelHash == chosen.hash }
            struct Piece: Decodable { let id: Int; let x: Int; let y: Int; let width: Int; let height: Int }
            let pieces = (try? JSONDecoder().decode([Piece].self, from: Data(slide.pieces.utf8))) ?? []
            if count > 0 {
                for label in 1...count {
                    let rings = Outline.rings(labels, width: mask.width, height: mask.height, label: Int32(label))
                    guard let outer = rings.first, outer.count >= 4 else { continue }
                    let xs = outer.map { Double($0.x) * maskScale }, ys = outer.map { Double($0.y) * maskScale }
                    let (cx, cy) = ((xs.min()! + xs.max()!) / 2, (ys.min()! + ys.max()!) / 2)
                    let piece = pieces.first { Double($0.x) <= cx && cx <= Double($0.x + $0.width) && Double($0.y) <= cy && cy <= Double($0.y + $0.height) }
                    let verdict = verdicts.first { $0.piece == piece?.id }
                    var measurements: [String: Any] = ["piece": piece?.id ?? 0, "tiles": verdict?.tiles ?? 0]
                    if let score = verdict?.score { measurements["score"] = score }
                    for (i, p) in (verdict?.probabilities ?? []).enumerated() where i < classes.count { measurements["mean p_\(classes[i])"] = p }
                    let name = verdict?.className ?? "Tissue"
                    features.append(feature(rings: rings.map { $0.map { [Double($0.x) * maskScale, Double($0.y) * maskScale] } },
                                            objectType: "annotation", name: "tissue piece \(piece?.id ?? 0)", className: name,
                                            color: colour(name, classes), measurements: measurements))
                }
            }
            // Tiles: rectangles with their probabilities and mean raw relevance per explainer.
            for item in items where item.dataset == slide.dataset && item.tile?.slidePath == slide.path {
                guard let id = item.id, let t = item.tile, let p = byItem[id] else { continue }
                var measurements: [String: Any] = ["tissue": t.tissue, "piece": t.piece]
                for (i, v) in p.probabilities.enumerated() where i < classes.count { measurements["p_\(classes[i])"] = v }
                for a in try store.attributions(item: id) where a.modelHash == chosen.hash {
                    measurements["\(a.explainer) mean relevance"] = a.meanRaw
                }
                let (x0, y0, x1, y1) = (Double(t.x), Double(t.y), Double(t.x + t.width), Double(t.y + t.height))
                features.append(feature(rings: [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]], objectType: "detection",
                                        name: "tile \(t.x),\(t.y)", className: p.className, color: colour(p.className, classes),
                                        measurements: measurements))
            }
            let collection: [String: Any] = ["type": "FeatureCollection", "features": features]
            let name = "\(slideID)-\(URL(fileURLWithPath: slide.path).deletingPathExtension().lastPathComponent).geojson"
            let path = "\(directory)/\(name)"
            try JSONSerialization.data(withJSONObject: collection, options: [.sortedKeys]).write(to: URL(fileURLWithPath: path))
            files.append(path)
        }
        return files
    }

    static func colour(_ className: String, _ classes: [String]) -> [Int] {
        palette[(classes.firstIndex(of: className) ?? classes.count) % palette.count]
    }

    static func feature(rings: [[[Double]]], objectType: String, name: String, className: String, color: [Int],
                        measurements: [String: Any]) -> [String: Any] {
        ["type": "Feature", "geometry": ["type": "Polygon", "coordinates": rings],
         "properties": ["objectType": objectType, "name": name, "classification": ["name": className, "color": color],
                        "measurements": measurements] as [String: Any]]
    }
}
