import Foundation
import Imaging
import Slides
import Store

/// The slide steps of a run (docs/slides.md): the slide rows written when a run starts, and the
/// run finisher's step that turns stored tiles into verdicts and stitched heatmaps.
public enum SlideRecords {
    /// A slide's row: header, tiling settings, tissue pieces, the low-resolution view (JPEG) and
    /// the tissue mask (PNG).
    static func record(_ s: LoadedSlide, dataset: String, runID: Int64, settings: SlideSettings) throws -> SlideRecord {
        let slide = s.slide, grid = s.grid
        let t = settings.tiling
        var tiling: [String: String] = ["tile": "\(t.tile)", "overlap": "\(t.overlap)", "min_tissue": "\(t.minTissue)",
                                        "tissue_mpp": "\(t.tissue.mpp)", "min_piece_area": "\(t.tissue.minPieceArea)",
                                        "scale": String(format: "%.6g", grid.scale), "candidates": "\(grid.candidates)"]
        if let mpp = t.mpp { tiling["mpp"] = "\(mpp)" }
        let pieces = grid.mask.pieces.map { p in
            "{\"id\":\(p.id),\"x\":\(p.x),\"y\":\(p.y),\"width\":\(p.width),\"height\":\(p.height),\"tiles\":\(grid.tiles.filter { $0.piece == p.id }.count)}"
        }
        // The view the report shows and the heatmaps are stitched on: about 1024 pixels on the
        // longer side (finer than the tissue mask for small slides, coarser for large ones).
        let display = try SlideView.read(slide, downsample: max(1, Double(max(slide.width, slide.height)) / 1024))
        return SlideRecord(runID: runID, dataset: dataset, path: s.path, label: s.label, annotationPath: s.annotation,
                           vendor: slide.vendor, width: slide.width, height: slide.height,
                           levels: slide.levels.map { "\($0.width)x\($0.height)@\(String(format: "%g", $0.downsample))" },
                           mppX: slide.mpp?.x, mppY: slide.mpp?.y, objectivePower: slide.objectivePower, quickHash: slide.quickHash,
                           tiling: canonicalJSON(tiling), tiles: grid.tiles.count, tissueFraction: grid.mask.tissueFraction,
                           pieces: "[" + pieces.joined(separator: ",") + "]", viewDownsample: display.downsample,
                           view: try Codecs.encodeJPEG(display.image, quality: 85), tissueMask: try Codecs.encodePNG(grid.mask.image),
                           penFraction: grid.mask.penFraction)
    }

    /// For every slide of the run and every model: the verdict of the slide (piece 0) and of each
    /// tissue piece from its tiles' stored probabilities, and per explainer the tiles' heatmaps
    /// stitched on the slide's view grid with, on an annotated slide, the slide pointing game.
    /// Reads the store only (and the annotation file), so a merged run gets the same.
    static func finish(store: Store, runID: Int64, settings: [String: SlideSettings]) throws {
        let slides = try store.slides(run: runID)
        guard !slides.isEmpty else { return }
        let items = try store.items(run: runID)
        let predictions = Dictionary(grouping: try store.predictions(run: runID), by: \.itemID)
        let models = Dictionary(try store.models().map { ($0.hash, $0) }, uniquingKeysWith: { a, _ in a })
        for slide in slides {
            guard let slideID = slide.id else { continue }
            let aggregation = settings[slide.dataset]?.aggregation ?? Aggregation()
            let tiles = items.filter { $0.dataset == slide.dataset && $0.tile?.slidePath == slide.path }
            let pieceIDs = Set(tiles.compactMap { $0.tile?.piece }).filter { $0 > 0 }.sorted()
            var verdicts: [SlideVerdictRecord] = []
            let byModel = Dictionary(grouping: tiles.flatMap { item in (predictions[item.id ?? -1] ?? []).map { (item, $0) } }, by: \.1.modelHash)
            for (hash, pairs) in byModel.sorted(by: { $0.key < $1.key }) {
                let classes = models[hash]?.classes ?? []
                for piece in [0] + pieceIDs {
                    let chosen = pairs.filter { piece == 0 || $0.0.tile?.piece == piece }.map(\.1.probabilities)
                    let v = aggregation.verdict(chosen, classes: classes)
                    verdicts.append(SlideVerdictRecord(slideID: slideID, modelHash: hash, piece: piece, rule: aggregation.description,
                                                       tiles: chosen.count, score: v.score, className: v.className, probabilities: v.mean))
                }
            }
            let annotations = try slide.annotationPath.map { try Annotations(path: $0) }
            let heatmaps = try stitch(tiles, of: slide, downsample: slide.viewDownsample, store: store).map { m in
                let classes = models[m.modelHash]?.classes ?? []
                let positive = aggregation.positiveClass.flatMap { classes.firstIndex(of: $0) } ?? classes.count - 1
                let pointing = SlideRecords.pointing(m, tiles: tiles, annotations: annotations, positive: positive)
                return SlideHeatmapRecord(slideID: slideID, modelHash: m.modelHash, explainer: m.explainer, downsample: m.downsample,
                                          width: m.width, height: m.height, low: m.low, high: m.high, values: m.values,
                                          pointing: pointing?.value, pointingK: pointing?.k)
            }
            try store.replaceSlideResults(slide: slideID, verdicts: verdicts, heatmaps: heatmaps)
        }
    }

    /// A stitched map of one model and explainer over a slide, with each tile's raw maximum.
    public struct StitchedMap {
        public var modelHash: String
        public var explainer: String
        public var downsample: Double
        public var width: Int
        public var height: Int
        public var low: Double?
        public var high: Double?
        public var values: [Float]
        /// Per tile heatmap on the map: the tile (its index in the `tiles` given), the class the
        /// heatmap explains, and its raw maximum.
        public var peaks: [(tile: Int, target: Int, peak: Double)]
    }

    /// The stored heatmaps of a slide's `tiles`, stitched per model and explainer on a map of
    /// `downsample` level-0 pixels per pixel (`Stitcher`), sorted by model hash and explainer.
    /// The run finisher stitches at the slide's view resolution, `candela slide` at `--heatmap-mpp`.
    public static func stitch(_ tiles: [ItemRecord], of slide: SlideRecord, downsample: Double, store: Store) throws -> [StitchedMap] {
        var stitchers: [String: (hash: String, explainer: String, stitcher: Stitcher, peaks: [(Int, Int, Double)])] = [:]
        for (index, item) in tiles.enumerated() {
            guard let id = item.id, let t = item.tile else { continue }
            for a in try store.attributions(item: id) {
                let key = "\(a.modelHash)\u{0}\(a.explainer)"
                var entry = stitchers[key] ?? (a.modelHash, a.explainer,
                                               Stitcher(slideWidth: slide.width, slideHeight: slide.height, downsample: downsample), [])
                entry.stitcher.add(a.heatmap, mapWidth: a.width, mapHeight: a.height, x: t.x, y: t.y, w: t.width, h: t.height,
                                   low: a.rawRange.low, high: a.rawRange.high)
                entry.peaks.append((index, a.target, a.rawRange.high))
                stitchers[key] = entry
            }
        }
        return stitchers.sorted { $0.key < $1.key }.map { _, entry in
            let r = entry.stitcher.result()
            return StitchedMap(modelHash: entry.hash, explainer: entry.explainer, downsample: entry.stitcher.downsample,
                               width: entry.stitcher.width, height: entry.stitcher.height, low: r.low, high: r.high, values: r.values,
                               peaks: entry.peaks.map { (tile: $0.0, target: $0.1, peak: $0.2) })
        }
    }

    /// The slide pointing game of a stitched map (`SlidePointing`): the tiles explained for the
    /// positive class, ranked by their raw maximum, against the slide's annotated regions.
    static func pointing(_ map: StitchedMap, tiles: [ItemRecord], annotations: Annotations?, positive: Int) -> (value: Double, k: Int)? {
        guard let annotations, !annotations.regions.isEmpty else { return nil }
        let ranked = map.peaks.filter { $0.target == positive }.compactMap { p -> SlidePointing.Tile? in
            guard let t = tiles[p.tile].tile else { return nil }
            return SlidePointing.Tile(peak: p.peak, onLesion: SlidePointing.touches(annotations, x: t.x, y: t.y, w: t.width, h: t.height))
        }
        return SlidePointing.score(ranked, regions: annotations.regions.count)
    }
}
