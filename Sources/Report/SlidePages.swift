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
    func writeSlidePages(_ slides: [SlideRecord], templates: [String: MustacheTemplate], common: [String: Any],
                         modelNames: [String: String], models: [ModelRecord], items: [ItemRecord],
                         predictions: [Int64: PredictionRecord], overlayThumbs: [Int64: [String: String]],
                         metricsByItem: [Int64: [MetricRecord]], colorBar: String, used: inout Set<String>) throws -> [[String: Any]] {
        let template = templates["slide"]!
        try FileManager.default.createDirectory(atPath: "\(directory)/slides", withIntermediateDirectories: true)
        try writeLeaflet(&used)
        var rows: [[String: Any]] = []
        for slide in slides {
            guard let id = slide.id else { continue }
            let key = String(slide.quickHash.prefix(12)) + "-\(id)"
            let name = URL(fileURLWithPath: slide.path).lastPathComponent
            let view = try Codecs.decode(slide.view)
            let viewFile = try writeOnce("slides/\(key)-view.jpg", &used) { try slide.view.write(to: URL(fileURLWithPath: $0)) }
            let maskFile = try writeOnce("slides/\(key)-tissue.png", &used) { try slide.tissueMask.write(to: URL(fileURLWithPath: $0)) }
            let verdicts = try store.slideVerdicts(slide: id)
            // The slide's primary model: the first by name among those that judged it (a dataset
            // may be covered by some models only).
            let judged = Set(verdicts.map(\.modelHash))
            let model = models.first { judged.contains($0.hash) } ?? models.first
            let primary = model?.hash
            let tiling = (try? JSONDecoder().decode([String: String].self, from: Data(slide.tiling.utf8))) ?? [:]
            var heatmaps: [[String: Any]] = []
            var layers: [[String: Any]] = []
            var overlayByLabel: [String: String] = [:]
            var heatLayers: [(spec: HeatmapPyramidWriter.Layer, label: String)] = []
            let tileItems = items.filter { $0.dataset == slide.dataset && $0.tile?.slidePath == slide.path }
            for h in try store.slideHeatmaps(slide: id) {
                let label = modelNames.count > 1 ? "\(h.explainer) [\(modelNames[h.modelHash] ?? String(h.modelHash.prefix(12)))]" : h.explainer
                let tag = "\(key)-\(h.modelHash.prefix(8))-\(safe(h.explainer))-\(options.colormap.rawValue)"
                // Shown on the slide's own scale from its minimum to its 99.5th percentile (the few
                // hottest pixels would otherwise leave the rest of the slide dark), clipped at 1.
                // A signed map (gradients, LRP, IG: negative values) is shown from 0 to the 99.5th
                // percentile of its positive values: the evidence for the class; evidence against
                // stays transparent instead of washing the whole slide at half strength.
                var finite = h.values.filter { $0.isFinite }.sorted()
                if let first = finite.first, first < 0 { finite = [0] + finite.filter { $0 > 0 } }
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
                if h.modelHash == primary || primary == nil { overlayByLabel[label] = image }
                let pointing = h.pointing.flatMap { v in h.pointingK.map { "\(Int((v * Double($0)).rounded()))/\($0)" } }
                heatmaps.append(["explainer": label, "image": "../\(image)", "array": "../\(array)", "slidePointing": orFalse(pointing),
                                 "range": h.low.map { String(format: "%.3g … %.3g", $0, h.high ?? $0) } ?? "no tile"])
                heatLayers.append((HeatmapPyramidWriter.Layer(modelHash: h.modelHash, explainer: h.explainer, tag: "\(tag)-tiles",
                                                              low: low, span: span), label))
            }
            // The zoomable viewer, when the slide file is still readable (a report rewritten
            // elsewhere keeps the page, without the viewer).
            var viewer: String?
            if FileManager.default.isReadableFile(atPath: slide.path), let opened = try? Slide(path: slide.path) { do {
                let finest = max(1, Double(tiling["scale"] ?? "1") ?? 1)
                let started = Date()
                let pyramid = try writeDeepZoom(opened, key: key, finest: finest, tissue: try Codecs.decode(slide.tissueMask, as: .gray),
                                                used: &used)
                let seconds = Date().timeIntervalSince(started)
                options.log?("slide \(name): viewer pyramid \(pyramid.written) tiles written in "
                             + String(format: "%.2f s (%.0f tiles/s)", seconds, Double(pyramid.written) / max(seconds, 1e-9))
                             + ", \(pyramid.kept) kept, \(pyramid.grid - pyramid.written - pyramid.kept) on glass left out")
                let maxZoom = pyramid.maxZoom
                // Each heatmap as a pyramid on the same grid, as sharp as the tiles' own heatmaps.
                let heatStarted = Date()
                let heatPyramids = try HeatmapPyramidWriter(directory: directory, colormap: options.colormap)
                    .write(zooms: ZoomGrid(width: slide.width, height: slide.height, finest: finest), tiles: tileItems,
                           layers: heatLayers.map(\.spec), attributions: { try store.attributions(item: $0) })
                for (layer, heat) in zip(heatLayers, heatPyramids) {
                    used.formUnion(heat.files)
                    layers.append(["name": ReportWriter.htmlEscaped("heatmap: \(layer.label)"), "tiles": "\(layer.spec.tag)/{z}/{x}_{y}.png",
                                   "grids": heat.json])
                }
                options.log?("slide \(name): heatmap pyramids " + heatPyramids.map { "\($0.written)" }.joined(separator: " + ")
                             + String(format: " tiles in %.2f s", Date().timeIntervalSince(heatStarted)))
                _ = try writeOnce("slides/clear.png", &used) {
                    try Codecs.encodePNG(Image(width: 1, height: 1, channels: 4, pixels: [0, 0, 0, 0])).write(to: URL(fileURLWithPath: $0))
                }
                let tissueLayer = "slides/\(key)-tissue-layer.png"
                _ = try writeOnce(tissueLayer, &used) {
                    try Codecs.encodePNG(ReportWriter.tissueLayer(try Codecs.decode(slide.tissueMask, as: .gray))).write(to: URL(fileURLWithPath: $0))
                }
                layers.append(["name": "tissue", "image": "../\(tissueLayer)"])
                // Tiles coloured by the primary model's probability of its last class.
                let classes = model?.classes ?? []
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
                layers.append(["name": ReportWriter.htmlEscaped("tiles: p(\(classes.last ?? "class"))"), "image": "../\(probabilityLayer)"])
                var config: [String: Any] = ["width": slide.width, "height": slide.height, "finest": finest, "maxZoom": maxZoom,
                                             "tiles": "\(key)/{z}/{x}_{y}.jpg", "glass": "\(key)/glass.jpg", "grids": pyramid.json,
                                             "clear": "clear.png",
                                             "layers": layers, "cells": cells,
                                             "positive": classes.last ?? "class",
                                             // The heatmap layers' scale, drawn inside the map.
                                             "legend": SVG.colorBar(options.colormap, low: "slide min. (signed: 0)", high: "99.5th pct.", width: 200)]
                if let path = slide.annotationPath, let data = FileManager.default.contents(atPath: path),
                   let geo = try? JSONSerialization.jsonObject(with: data) {
                    config["annotations"] = geo
                }
                // Inline JSON inside <script>: no "<" at all (nothing can end the element or open a
                // comment), and no U+2028/U+2029 (line breaks to older JavaScript).
                let json = String(decoding: try JSONSerialization.data(withJSONObject: config, options: [.sortedKeys]), as: UTF8.self)
                    .replacingOccurrences(of: "<", with: "\\u003c").replacingOccurrences(of: "\u{2028}", with: "\\u2028")
                    .replacingOccurrences(of: "\u{2029}", with: "\\u2029")
                viewer = ReportWriter.viewerScript(config: json)
            } catch {
                // A slide that reads badly loses its viewer, not the report.
                viewer = nil
            } }
            let mpp = slide.mppX.map { String(format: "%.4g µm per pixel", $0) } ?? "resolution not stated"
            let pieces = (try? JSONSerialization.jsonObject(with: Data(slide.pieces.utf8)) as? [Any])?.count ?? 0
            let verdictRows = verdicts.map { v -> [String: Any] in
                ["model": modelNames[v.modelHash] ?? String(v.modelHash.prefix(12)), "piece": v.piece, "tiles": v.tiles,
                 "score": v.score.map { String(format: "%.3f", $0) } ?? "—", "verdict": v.className,
                 "wrong": v.piece == 0 && slide.label != nil && slide.label != v.className,
                 "probabilities": v.probabilities.map { String(format: "%.3f", $0) }.joined(separator: " / ")]
            }
            // Tiles to look at first: most positive, most relevant (mean raw relevance of the
            // doctor's explainer), and where the explainers disagree most (needs `agreement`).
            let classes = model?.classes ?? []
            let shown = options.doctorExplainer.map { modelNames.count > 1 ? "\($0) [\(model?.name ?? "")]" : $0 }
                .flatMap { overlayByLabel[$0] != nil ? $0 : nil } ?? overlayByLabel.keys.sorted().first
            func card(_ item: ItemRecord, _ caption: String) -> [String: Any] {
                let thumb = shown.flatMap { overlayThumbs[item.id!]?[$0] }
                return ["href": "../items/\(item.id!).html", "thumb": orFalse(thumb.map { "../\($0)" }), "caption": caption, "rawThumb": orFalse(thumb)]
            }
            let scored = tileItems.compactMap { i -> (ItemRecord, Double)? in
                guard let id = i.id, let p = predictions[id]?.probabilities.last else { return nil }
                return (i, p)
            }
            let positive = scored.sorted { $0.1 > $1.1 }.prefix(6).map { card($0.0, String(format: "p = %.3f", $0.1)) }
            var relevance: [(ItemRecord, Double)] = []
            if let shown {
                for item in tileItems {
                    guard let id = item.id else { continue }
                    for a in try store.attributions(item: id) where (modelNames.count > 1 ? "\(a.explainer) [\(modelNames[a.modelHash] ?? "")]" : a.explainer) == shown {
                        relevance.append((item, a.meanRaw))
                    }
                }
            }
            let relevant = relevance.sorted { $0.1 > $1.1 }.prefix(6).map { card($0.0, String(format: "relevance %.3g", $0.1)) }
            let agreement = tileItems.compactMap { i -> (ItemRecord, Double)? in
                let v = (metricsByItem[i.id ?? -1] ?? []).filter { $0.name == "agreement" }.compactMap(\.value)
                return v.isEmpty ? nil : (i, v.reduce(0, +) / Double(v.count))
            }
            let disagree = agreement.sorted { $0.1 < $1.1 }.prefix(6).map { card($0.0, String(format: "agreement %.2f", $0.1)) }
            var topViews: [[String: Any]] = [["title": "Most positive: highest probability of \(classes.last ?? "the last class")", "tiles": positive]]
            if !relevant.isEmpty { topViews.append(["title": "Most relevant: highest mean \(shown ?? "") relevance", "tiles": relevant]) }
            if !disagree.isEmpty { topViews.append(["title": "Explainers disagree most (lowest agreement)", "tiles": disagree]) }

            // The doctor's slide page: verdict, pieces, slide and heatmap side by side, top tiles, warnings.
            let main = verdicts.first { $0.piece == 0 && ($0.modelHash == primary || primary == nil) }
            var warnings: [String] = []
            let scale = Double(tiling["scale"] ?? "") ?? 1
            if slide.mppX == nil {
                warnings.append("The slide does not state its resolution: the model may not see tissue at the scale it was trained on.")
            } else if scale < 0.98 {
                warnings.append(String(format: "The slide (%.3g µm per pixel) is coarser than the resolution the model expects (%@ µm per pixel): its tiles were enlarged.",
                                       slide.mppX!, tiling["mpp"] ?? "?"))
            }
            if slide.tissueFraction < 0.05 || slide.tiles < 10 {
                warnings.append("Little tissue: \(slide.tiles) tiles (\(percent(slide.tissueFraction)) of the slide). The answer rests on little evidence.")
            }
            if slide.penFraction >= ReportWriter.penWarning {
                warnings.append(String(format: "Pen marks cover %.1f%% of the slide. Ink is left out of the tissue, but a tile at its edge may still hold some: check the highlighting near the marks.",
                                       100 * slide.penFraction))
            }
            // Focus: tiles whose Laplacian variance is below a quarter of the slide's median.
            let sharpness = tileItems.compactMap { $0.tile?.sharpness }
            let blurred = Focus.blurred(sharpness).filter { $0 }.count
            let focus = sharpness.isEmpty ? nil
                : "Focus: \(blurred) of \(sharpness.count) tiles out of focus (variance of the Laplacian below a quarter of the slide's median)."
            if blurred >= 3, Double(blurred) / Double(sharpness.count) >= ReportWriter.blurWarning {
                warnings.append("\(percent(Double(blurred) / Double(sharpness.count))) of the tissue is out of focus (\(blurred) tiles): "
                                + "the model and the highlighting saw blurred tissue there; ask for a rescan if it matters.")
            }
            if let shown {
                let raw = shown.components(separatedBy: " [").first ?? shown
                var sanity: [Double] = []
                for item in tileItems {
                    for m in metricsByItem[item.id ?? -1] ?? [] where m.name == "randomization" && (m.explainer == raw || m.explainer == shown) {
                        if let v = m.value { sanity.append(v) }
                    }
                }
                if !sanity.isEmpty, sanity.reduce(0, +) / Double(sanity.count) >= ReportWriter.sanityThreshold {
                    warnings.append("The highlighting method failed the sanity check on this run: its pictures barely change when the model's knowledge is erased.")
                }
            }
            if !agreement.isEmpty, agreement.map(\.1).reduce(0, +) / Double(agreement.count) < 0.2 {
                warnings.append("The explanation methods disagree on this slide (mean rank agreement below 0.2): read the highlighting with care.")
            }
            var card: ReportCard?
            if let shown { card = cards[shown] ?? cards[shown.components(separatedBy: " [").first ?? shown] }
            var doctor = common
            let doctorHref = "doctor/slide-\(id).html"
            doctor.merge([
                "name": name, "slideHref": "slides/\(id).html", "verdict": main?.className ?? "no answer",
                "score": orFalse(main?.score.map { String(format: "%.3f", $0) }), "label": orFalse(slide.label),
                "rule": main?.rule ?? "no rule", "tiles": slide.tiles, "hasWarnings": !warnings.isEmpty, "warnings": warnings,
                "pieces": verdicts.filter { $0.piece > 0 && ($0.modelHash == primary || primary == nil) }.map {
                    ["piece": $0.piece, "tiles": $0.tiles, "verdict": $0.className, "score": $0.score.map { String(format: "%.3f", $0) } ?? "—"]
                },
                "view": viewFile, "overlay": orFalse(shown.flatMap { overlayByLabel[$0] }),
                "methodTitle": card?.title ?? shown ?? "the explainer", "explainer": shown ?? "—",
                "meaning": card?.meaning ?? "The colours show how much each region mattered to the model's answer.",
                "limits": card?.limits ?? "", "positive": classes.last ?? "the last class",
                "hasTopTiles": !positive.isEmpty,
                "topTiles": positive.map { t -> [String: Any] in ["thumb": t["rawThumb"]!, "caption": t["caption"]!] },
            ]) { _, new in new }
            try render(templates["doctor-slide"]!, doctor, to: doctorHref, &used)

            var context = common
            let href = "slides/\(id).html"
            context.merge([
                "title": "Candela: slide \(name)", "name": name, "path": slide.path, "vendor": slide.vendor, "width": slide.width,
                "height": slide.height, "mpp": mpp, "levels": slide.levels.joined(separator: ", "), "label": slide.label ?? "—",
                "tile": "\(tiling["tile"] ?? "?") px" + (tiling["mpp"].map { " at \($0) µm per pixel" } ?? " at level 0"),
                "tiles": slide.tiles, "tissue": percent(slide.tissueFraction), "rule": verdicts.first?.rule ?? "no verdict",
                "focus": orFalse(focus),
                "verdicts": verdictRows, "view": "../\(viewFile)", "tissueMask": "../\(maskFile)", "heatmaps": heatmaps,
                "viewWidth": min(460, max(300, view.width)), "colorBar": colorBar,
                "hasViewer": viewer != nil, "viewerScript": viewer ?? "", "topViews": topViews, "doctorHref": doctorHref,
            ]) { _, new in new }
            try render(template, context, to: href, &used)
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
