import Foundation

/// Puts per-tile heatmaps onto one map of the whole slide (docs/slides.md, "Stitching").
///
/// The map has `downsample` level-0 pixels per pixel. Each tile heatmap pixel is first brought
/// back to its raw value (`low + v · (high − low)`, so that every tile is on the slide's one
/// scale, not its own [0,1]), then added at the map pixel that holds its level-0 centre (or,
/// when map pixels are smaller than tile pixels, at every map pixel it covers); a map pixel is
/// the mean of what fell on it, so overlapping tiles blend and no seam appears where tiles meet. Map pixels no tile covers are NaN. Memory: the map (4 + 4 bytes a pixel), never
/// the slide.
public struct Stitcher {
    public let width: Int
    public let height: Int
    public let downsample: Double
    private var sums: [Double]
    private var counts: [Int32]

    public init(slideWidth: Int, slideHeight: Int, downsample: Double) {
        self.downsample = downsample
        width = max(1, Int((Double(slideWidth) / downsample).rounded()))
        height = max(1, Int((Double(slideHeight) / downsample).rounded()))
        sums = [Double](repeating: 0, count: width * height)
        counts = [Int32](repeating: 0, count: width * height)
    }

    /// Adds a tile's [0,1] heatmap (`mapWidth` × `mapHeight`, row-major) covering the level-0
    /// rectangle (x, y, w, h), normalized from [low, high].
    public mutating func add(_ values: [Float], mapWidth: Int, mapHeight: Int, x: Int, y: Int, w: Int, h: Int, low: Double, high: Double) {
        let (sx, sy) = (Double(w) / Double(mapWidth), Double(h) / Double(mapHeight))
        /// The map pixels a tile pixel's level-0 span [a, a + size) covers: the one holding its
        /// centre when map pixels are larger, every one it overlaps when they are smaller (so a
        /// fine map has no holes between tile pixels).
        func span(_ a: Double, _ size: Double, _ limit: Int) -> Range<Int> {
            if size <= downsample {
                let i = Int((a + size / 2) / downsample)
                return i >= 0 && i < limit ? i..<(i + 1) : 0..<0
            }
            let lo = max(0, Int((a / downsample).rounded(.down)))
            let hi = min(limit, max(lo + 1, Int(((a + size) / downsample).rounded(.up))))
            return lo < hi ? lo..<hi : 0..<0
        }
        for r in 0..<mapHeight {
            let rows = span(Double(y) + Double(r) * sy, sy, height)
            for c in 0..<mapWidth {
                let cols = span(Double(x) + Double(c) * sx, sx, width)
                let v = low + Double(values[r * mapWidth + c]) * (high - low)
                for row in rows {
                    for col in cols {
                        sums[row * width + col] += v
                        counts[row * width + col] += 1
                    }
                }
            }
        }
    }

    /// The stitched raw map (NaN where no tile), and its finite range.
    public func result() -> (values: [Float], low: Double?, high: Double?) {
        var out = [Float](repeating: .nan, count: width * height)
        var low = Double.infinity, high = -Double.infinity
        for i in 0..<(width * height) where counts[i] > 0 {
            let v = sums[i] / Double(counts[i])
            out[i] = Float(v)
            low = min(low, v)
            high = max(high, v)
        }
        return low <= high ? (out, low, high) : (out, nil, nil)
    }
}
