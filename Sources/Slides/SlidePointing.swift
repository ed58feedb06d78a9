import Foundation

/// The pointing game at slide scale (docs/slides.md, "Slide pointing game"): does an explainer's
/// strongest evidence on a slide fall on the annotated lesions?
///
/// Each tile explained for the positive class is ranked by its heatmap's raw maximum (the
/// stitched map's one scale, so tiles compare); of the `k` highest, where `k` is the number of
/// annotated regions on the slide, the share that touch an annotated region is the score. One
/// region found by one tile each gives 1; evidence spread over tiles without lesions lowers it.
/// It is precision at k over tiles, the slide counterpart of Zhang et al.'s pointing game
/// (ECCV 2016), which asks the same of a heatmap's peak pixel.
public enum SlidePointing {
    public struct Tile: Sendable, Equatable {
        /// The raw maximum of the tile's heatmap.
        public var peak: Double
        /// Does the tile touch an annotated region?
        public var onLesion: Bool
        public init(peak: Double, onLesion: Bool) { (self.peak, self.onLesion) = (peak, onLesion) }
    }

    /// The share of the `regions` (at most the tile count) highest-peaked tiles that are on a
    /// lesion, with the k used; nil without regions or tiles. Ties keep the input order.
    public static func score(_ tiles: [Tile], regions: Int) -> (value: Double, k: Int)? {
        let k = min(regions, tiles.count)
        guard k > 0 else { return nil }
        let ranked = tiles.enumerated().sorted { a, b in
            a.element.peak != b.element.peak ? a.element.peak > b.element.peak : a.offset < b.offset
        }
        let hits = ranked.prefix(k).filter(\.element.onLesion).count
        return (Double(hits) / Double(k), k)
    }

    /// Does the level-0 rectangle (x, y, w, h) touch one of `annotations`' regions? Tested on a
    /// 32 × 32 grid of points inside it (pixel centres of the tile at 32 pixels).
    public static func touches(_ annotations: Annotations, x: Int, y: Int, w: Int, h: Int) -> Bool {
        annotations.mask(x: x, y: y, regionWidth: w, regionHeight: h, width: 32, height: 32).contains { $0 > 0 }
    }
}
