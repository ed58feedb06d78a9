import Foundation
import Imaging
import Mustache
import Slides
import Store
import Tensors

extension ReportWriter {
    /// One page per slide (`slides/<id>.html`): header, verdicts per model and tissue piece, the
    /// low-resolution view, the tissue mask, and each stitched heatmap over the view (colour only
    /// where tiles were taken, opacity growing with relevance) with its `.npy`. Returns the rows
    /// of the index's slide table (verdicts of `primary`).
    func writeSlidePages(_ slides: [SlideRecord], template: MustacheTemplate, common: [String: Any], modelNames: [String: String],
                         primary model: ModelRecord?, items: [ItemRecord], predictions: [Int64: PredictionRecord], colorBar: String,
                         used: inout Set<String>) throws -> [[String: Any]] {
        try FileManager.default.createDirectory(atPath: "\(directory)/slides", withIntermediateDirectories: true)
        try writeLeaflet(&used)
        let primary = model?.hash
        var rows: [[String: Any]] = []
        for slide in slides {
            guard let id = slide.id else { continue }
            let key = String(slide.quickHash.prefix(12)) + "-\(id)"
            let name = URL(fileURLWithPath: slide.path).lastPathComponent
            let view = try Codecs.decode(slide.view)
            let viewFile = try writeOnce("slides/\(key)-view.jpg", &used) { try slide.view.write(to: URL(fileURLWithPath: $0)) }
            let maskFile = try writeOnce("slides/\(key)-tissue.png", &used) { try slide.tissueMask.write(to: URL(fileURLWithPath: $0)) }
            let verdicts = try store.slideVerdicts(slide: id)
            let tiling = (try? JSONDecoder().decode([String: String].self, from: Data(slide.tiling.utf8))) ?? [:]
            var heatmaps: [[String: Any]] = []
            var layers: [[String: Any]] = []
            for h in try store.slideHeatmaps(slide: id) {
                let label = modelNames.count > 1 ? "\(h.explainer) [\(modelNames[h.modelHash] ?? String(h.modelHash.prefix(12)))]" : h.explainer
                let tag = "\(key)-\(h.modelHash.prefix(8))-\(safe(h.explainer))-\(options.colormap.rawValue)"
                // Shown on the slide's own scale from its minimum to its 99.5th percentile (the few
                // hottest pixels would otherwise leave the rest of the slide dark), clipped at 1.
                let finite = h.values.filter { $0.isFinite }.sorted()
                let low = Double(finite.first ?? 0)
                let top = finite.isEmpty ? low : Double(finite[min(finite.count - 1, Int(Double(finite.count - 1) * 0.995))])
                let span = max(top - low, 1e-30)
                let normalized = h.values.map { $0.isNaN ? Float.nan : Float(min(1, (Double($0) - low) / span)) }
                // Written every time: the stitched map changes when tiles are added by a resumed run.
                let image = "slides/\(tag).jpg"
                try writeJPEG(ReportWriter.overlay(view, normalized, width: h.width, height: h.height, colormap: options.colormap),
                              to: "\(directory)/\(image)")
                used.insert(image)
                let array = "slides/\(tag).npy"
                try NPY.write(Tensor(shape: [h.height, h.width], data: h.values), to: "\(directory)/\(array)")
                used.insert(array)
                heatmaps.append(["explainer": label, "image": "../\(image)", "array": "../\(array)",
                                 "range": h.low.map { String(format: "%.3g … %.3g", $0, h.high ?? $0) } ?? "no tile"])
                let layer = "slides/\(tag)-layer.png"
                try Codecs.encodePNG(ReportWriter.heatmapLayer(normalized, width: h.width, height: h.height, colormap: options.colormap))
                    .write(to: URL(fileURLWithPath: "\(directory)/\(layer)"))
                used.insert(layer)
                layers.append(["name": "heatmap: \(label)", "image": "../\(layer)"])
            }
            // The zoomable viewer, when the slide file is still readable (a report rewritten
            // elsewhere keeps the page, without the viewer).
            var viewer: String?
            if FileManager.default.isReadableFile(atPath: slide.path), let opened = try? Slide(path: slide.path) {
                let finest = max(1, Double(tiling["scale"] ?? "1") ?? 1)
                let maxZoom = try writeDeepZoom(opened, key: key, finest: finest, used: &used)
                let tissueLayer = "slides/\(key)-tissue-layer.png"
                _ = try writeOnce(tissueLayer, &used) {
                    try Codecs.encodePNG(ReportWriter.tissueLayer(try Codecs.decode(slide.tissueMask, as: .gray))).write(to: URL(fileURLWithPath: $0))
                }
                layers.append(["name": "tissue", "image": "../\(tissueLayer)"])
                // Tiles coloured by the primary model's probability of its last class.
                let classes = model?.classes ?? []
                let tileItems = items.filter { $0.dataset == slide.dataset && $0.tile?.slidePath == slide.path }
                let (gw, gh) = (max(1, view.width), max(1, view.height))
                var grid = [Float](repeating: .nan, count: gw * gh)
                var cells: [[Any]] = []
                for item in tileItems {
                    guard let itemID = item.id, let t = item.tile, let p = predictions[itemID], let positive = p.probabilities.last else { continue }
                    cells.append([t.x, t.y, t.width, t.height, positive, "../items/\(itemID).html"])
                    let (sx, sy) = (Double(gw) / Double(slide.width), Double(gh) / Double(slide.height))
                    for r in Int(Double(t.y) * sy)..<min(gh, max(Int(Double(t.y) * sy) + 1, Int(Double(t.y + t.height) * sy))) {
                        for c in Int(Double(t.x) * sx)..<min(gw, max(Int(Double(t.x) * sx) + 1, Int(Double(t.x + t.width) * sx))) {
                            grid[r * gw + c] = Float(positive)
                        }
                    }
                }
                let probabilityLayer = "slides/\(key)-\(String((primary ?? "").prefix(8)))-probability.png"
                try Codecs.encodePNG(ReportWriter.heatmapLayer(grid, width: gw, height: gh, colormap: .turbo))
                    .write(to: URL(fileURLWithPath: "\(directory)/\(probabilityLayer)"))
                used.insert(probabilityLayer)
                layers.append(["name": "tiles: p(\(classes.last ?? "class"))", "image": "../\(probabilityLayer)"])
                var config: [String: Any] = ["width": slide.width, "height": slide.height, "finest": finest, "maxZoom": maxZoom,
                                             "tiles": "\(key)/{z}/{x}_{y}.jpg", "layers": layers, "cells": cells,
                                             "positive": classes.last ?? "class"]
                if let path = slide.annotationPath, let data = FileManager.default.contents(atPath: path),
                   let geo = try? JSONSerialization.jsonObject(with: data) {
                    config["annotations"] = geo
                }
                // Inline JSON inside <script>: "</" cannot end the script element.
                let json = String(decoding: try JSONSerialization.data(withJSONObject: config, options: [.sortedKeys]), as: UTF8.self)
                    .replacingOccurrences(of: "</", with: "<\\/")
                viewer = ReportWriter.viewerScript(config: json)
            }
            let mpp = slide.mppX.map { String(format: "%.4g µm per pixel", $0) } ?? "resolution not stated"
            let pieces = (try? JSONSerialization.jsonObject(with: Data(slide.pieces.utf8)) as? [Any])?.count ?? 0
            let verdictRows = verdicts.map { v -> [String: Any] in
                ["model": modelNames[v.modelHash] ?? String(v.modelHash.prefix(12)), "piece": v.piece, "tiles": v.tiles,
                 "score": v.score.map { String(format: "%.3f", $0) } ?? "—", "verdict": v.className,
                 "wrong": v.piece == 0 && slide.label != nil && slide.label != v.className,
                 "probabilities": v.probabilities.map { String(format: "%.3f", $0) }.joined(separator: " / ")]
            }
            var context = common
            let href = "slides/\(id).html"
            context.merge([
                "title": "Candela: slide \(name)", "name": name, "path": slide.path, "vendor": slide.vendor, "width": slide.width,
                "height": slide.height, "mpp": mpp, "levels": slide.levels.joined(separator: ", "), "label": slide.label ?? "—",
                "tile": "\(tiling["tile"] ?? "?") px" + (tiling["mpp"].map { " at \($0) µm per pixel" } ?? " at level 0"),
                "tiles": slide.tiles, "tissue": percent(slide.tissueFraction), "rule": verdicts.first?.rule ?? "no verdict",
                "verdicts": verdictRows, "view": "../\(viewFile)", "tissueMask": "../\(maskFile)", "heatmaps": heatmaps,
                "viewWidth": min(460, max(300, view.width)), "colorBar": colorBar,
                "hasViewer": viewer != nil, "viewerScript": viewer ?? "",
            ]) { _, new in new }
            try render(template, context, to: href, &used)
            let main = verdicts.first { $0.piece == 0 && ($0.modelHash == primary || primary == nil) }
            rows.append(["name": name, "href": href, "thumb": viewFile, "label": slide.label ?? "—",
                         "verdict": main?.className ?? "—", "score": main?.score.map { String(format: "%.3f", $0) } ?? "—",
                         "wrong": slide.label != nil && main != nil && slide.label != main!.className,
                         "pieces": pieces, "tiles": slide.tiles, "tissue": percent(slide.tissueFraction)])
        }
        return rows
    }

    /// The slide view with a stitched heatmap over it: pixels no tile covered (NaN) show the
    /// view unchanged; the others blend the colormap with opacity 0.75 · value, so that
    /// irrelevant tissue shows as it is and relevant tissue stands out.
    static func overlay(_ view: Image, _ values: [Float], width: Int, height: Int, colormap: Colormap) -> Image {
        let rgb = view.rgb()
        var pixels = rgb.pixels
        let table = colormap.table
        for r in 0..<rgb.height {
            let hr = min(height - 1, r * height / rgb.height)
            for c in 0..<rgb.width {
                let v = values[hr * width + min(width - 1, c * width / rgb.width)]
                guard v.isFinite else { continue }
                let t = min(1, max(0, v))
                let colour = table[Int((t * 255).rounded())]
                let alpha = 0.75 * t
                let i = (r * rgb.width + c) * 3
                for (k, ch) in [colour.0, colour.1, colour.2].enumerated() {
                    pixels[i + k] = UInt8(min(255, max(0, ((1 - alpha) * Float(rgb.pixels[i + k]) + alpha * Float(ch)).rounded())))
                }
            }
        }
        return Image(width: rgb.width, height: rgb.height, channels: 3, pixels: pixels)
    }
}
