import Dispatch
import Foundation
import Imaging
import Store

/// The heatmap layers of the slide viewer as deep-zoom pyramids of RGBA PNG tiles, on the same
/// grid as the slide's (`DeepZoomWriter`), so that a heatmap stays as sharp as the tiles' own
/// heatmaps at every zoom instead of one picture of the whole slide stretched.
///
/// `slides/<tag>/<z>/<x>_<y>.png`, 256 pixels. At the finest zoom each pixel is the mean raw
/// value of the tile heatmap pixels under its centre (overlapping tiles averaged, as the
/// stitched map does), shown from the layer's `low` (transparent) to `low + span` (full colour,
/// opacity 0.8), clipped; coarser zooms average their four children 2 × 2 (premultiplied by
/// alpha). A tile with nothing to show is not written; the viewer shows a transparent image
/// there. The finest zoom is made in horizontal bands, so only one band of tiles' heatmaps is in
/// memory; each band's and each coarser zoom's tiles are written on every core.
struct HeatmapPyramidWriter {
    struct Layer: Sendable {
        var modelHash: String
        var explainer: String
        /// The layer's folder under `slides/`.
        var tag: String
        var low: Double
        var span: Double
    }

    let directory: String
    let colormap: Colormap

    /// One pyramid per layer, in the order of `layers`. `tiles` are the slide's tile items;
    /// `attributions` gives an item's stored heatmaps.
    func write(zooms: ZoomGrid, tiles: [ItemRecord], layers: [Layer],
               attributions: (Int64) throws -> [AttributionRecord]) throws -> [DeepZoomWriter.Pyramid] {
        let side = ReportWriter.viewerTile
        let directory = self.directory
        let (finest, maxZoom, grid) = (zooms.finest, zooms.maxZoom, zooms.level)
        @Sendable func file(_ layer: Int, _ z: Int, _ x: Int, _ y: Int) -> String { "slides/\(layers[layer].tag)/\(z)/\(x)_\(y).png" }
        let table = colormap.table
        let bits = BitGrids(layers: layers.count, zooms: zooms)
        for l in layers.indices {
            for z in 0...maxZoom {
                try FileManager.default.createDirectory(atPath: "\(directory)/slides/\(layers[l].tag)/\(z)", withIntermediateDirectories: true)
            }
        }
        @Sendable func save(_ pixels: [UInt8], _ l: Int, _ z: Int, _ x: Int, _ y: Int) throws {
            try Codecs.encodePNG(Image(width: side, height: side, channels: 4, pixels: pixels))
                .write(to: URL(fileURLWithPath: "\(directory)/\(file(l, z, x, y))"))
            bits.set(l, z, x, y)
        }

        // The finest zoom, band by band.
        let finestGrid = grid(maxZoom)
        let placed = tiles.compactMap { item -> (id: Int64, tile: TileRecord)? in
            guard let id = item.id, let t = item.tile else { return nil }
            return (id, t)
        }.sorted { ($0.tile.y, $0.tile.x) < ($1.tile.y, $1.tile.x) }
        let tallest = placed.map(\.tile.height).max() ?? 0
        var first = 0
        var loaded: [Int64: [AttributionRecord]] = [:]
        let failures = FirstError()
        for ty in 0..<finestGrid.rows {
            let (b0, b1) = (Double(ty) * finestGrid.span, Double(ty + 1) * finestGrid.span)
            while first < placed.count, Double(placed[first].tile.y + tallest) <= b0 { first += 1 }
            var band: [(id: Int64, tile: TileRecord)] = []
            var k = first
            while k < placed.count, Double(placed[k].tile.y) < b1 {
                if Double(placed[k].tile.y + placed[k].tile.height) > b0 { band.append(placed[k]) }
                k += 1
            }
            let ids = Set(band.map(\.id))
            loaded = loaded.filter { ids.contains($0.key) }
            for t in band where loaded[t.id] == nil { loaded[t.id] = try attributions(t.id) }
            // Per column of the band, the tiles that reach it.
            var columns: [Int: [(tile: TileRecord, maps: [AttributionRecord])]] = [:]
            for t in band {
                let c0 = Int(Double(t.tile.x) / finestGrid.span), c1 = Int(Double(t.tile.x + t.tile.width - 1) / finestGrid.span)
                for c in c0...min(c1, finestGrid.cols - 1) { columns[c, default: []].append((t.tile, loaded[t.id] ?? [])) }
            }
            let byColumn = columns
            let jobs = byColumn.keys.sorted().flatMap { c in layers.indices.map { (c, $0) } }
            DispatchQueue.concurrentPerform(iterations: jobs.count) { j in
                let (tx, l) = jobs[j]
                let layer = layers[l]
                let (x0, y0) = (Double(tx) * finestGrid.span, b0)
                var sums = [Double](repeating: 0, count: side * side)
                var counts = [Int32](repeating: 0, count: side * side)
                for (t, maps) in byColumn[tx] ?? [] {
                    guard let a = maps.first(where: { $0.modelHash == layer.modelHash && $0.explainer == layer.explainer }),
                          a.width > 0, a.height > 0 else { continue }
                    let (low, high) = a.rawRange
                    let c0 = max(0, Int((Double(t.x) - x0) / finest)), c1 = min(side, Int(ceil((Double(t.x + t.width) - x0) / finest)))
                    let r0 = max(0, Int((Double(t.y) - y0) / finest)), r1 = min(side, Int(ceil((Double(t.y + t.height) - y0) / finest)))
                    guard c0 < c1, r0 < r1 else { continue }
                    for r in r0..<r1 {
                        let y = y0 + (Double(r) + 0.5) * finest
                        guard y >= Double(t.y), y < Double(t.y + t.height) else { continue }
                        let hy = min(a.height - 1, Int((y - Double(t.y)) / Double(t.height) * Double(a.height)))
                        for c in c0..<c1 {
                            let x = x0 + (Double(c) + 0.5) * finest
                            guard x >= Double(t.x), x < Double(t.x + t.width) else { continue }
                            let hx = min(a.width - 1, Int((x - Double(t.x)) / Double(t.width) * Double(a.width)))
                            sums[r * side + c] += low + Double(a.heatmap[hy * a.width + hx]) * (high - low)
                            counts[r * side + c] += 1
                        }
                    }
                }
                var pixels = [UInt8](repeating: 0, count: side * side * 4)
                var shown = false
                for i in 0..<(side * side) where counts[i] > 0 {
                    let v = min(1, max(0, (sums[i] / Double(counts[i]) - layer.low) / layer.span))
                    let alpha = UInt8((204 * v).rounded())
                    guard alpha > 0 else { continue }
                    let colour = table[Int((v * 255).rounded())]
                    (pixels[4 * i], pixels[4 * i + 1], pixels[4 * i + 2], pixels[4 * i + 3]) = (colour.0, colour.1, colour.2, alpha)
                    shown = true
                }
                guard shown else { return }
                do { try save(pixels, l, maxZoom, tx, ty) } catch { failures.record(error) }
            }
            try failures.rethrow()
        }

        // Coarser zooms from their four children.
        for z in stride(from: maxZoom - 1, through: 0, by: -1) {
            let (cols, rows, _) = grid(z)
            let jobs = (0..<rows).flatMap { ty in (0..<cols).flatMap { tx in layers.indices.map { (tx, ty, $0) } } }
                .filter { tx, ty, l in [(0, 0), (1, 0), (0, 1), (1, 1)].contains { bits.isSet(l, z + 1, 2 * tx + $0.0, 2 * ty + $0.1) } }
            DispatchQueue.concurrentPerform(iterations: jobs.count) { j in
                let (tx, ty, l) = jobs[j]
                do {
                    var pixels = [UInt8](repeating: 0, count: side * side * 4)
                    for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] where bits.isSet(l, z + 1, 2 * tx + dx, 2 * ty + dy) {
                        let child = try Codecs.decode(path: "\(directory)/\(file(l, z + 1, 2 * tx + dx, 2 * ty + dy))", as: .rgba)
                        guard child.width == side, child.height == side else { continue }
                        let half = side / 2
                        for r in 0..<half {
                            for c in 0..<half {
                                // The mean of 2 × 2 children pixels, colour weighted by alpha.
                                var (sr, sg, sb, sa) = (0, 0, 0, 0)
                                for (u, v) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                                    let s = ((2 * r + v) * side + 2 * c + u) * 4
                                    let a = Int(child.pixels[s + 3])
                                    (sr, sg, sb, sa) = (sr + Int(child.pixels[s]) * a, sg + Int(child.pixels[s + 1]) * a,
                                                        sb + Int(child.pixels[s + 2]) * a, sa + a)
                                }
                                guard sa > 0 else { continue }
                                let d = ((dy * half + r) * side + dx * half + c) * 4
                                (pixels[d], pixels[d + 1], pixels[d + 2]) = (UInt8(sr / sa), UInt8(sg / sa), UInt8(sb / sa))
                                pixels[d + 3] = UInt8((sa + 2) / 4)
                            }
                        }
                    }
                    try save(pixels, l, z, tx, ty)
                } catch {
                    failures.record(error)
                }
            }
            try failures.rethrow()
        }
        return layers.indices.map { l in
            var files: [String] = []
            for z in 0...maxZoom {
                let (cols, rows, _) = grid(z)
                for y in 0..<rows { for x in 0..<cols where bits.isSet(l, z, x, y) { files.append(file(l, z, x, y)) } }
            }
            let grids = bits.grids(l)
            return DeepZoomWriter.Pyramid(maxZoom: maxZoom, grids: grids, written: files.count, kept: 0,
                                          grid: grids.map { $0.cols * $0.rows }.reduce(0, +), files: files)
        }
    }
}

/// A bit per tile, zoom and layer (which tiles of a pyramid were written), set from concurrent
/// writers (under a lock).
final class BitGrids: @unchecked Sendable {
    private var bits: [[[UInt8]]]
    private let cols: [Int], rows: [Int]
    private let lock = NSLock()

    init(layers: Int, zooms: ZoomGrid) {
        cols = (0...zooms.maxZoom).map { zooms.level($0).cols }
        rows = (0...zooms.maxZoom).map { zooms.level($0).rows }
        bits = Array(repeating: zip(cols, rows).map { [UInt8](repeating: 0, count: ($0 * $1 + 7) / 8) }, count: layers)
    }

    func set(_ l: Int, _ z: Int, _ x: Int, _ y: Int) {
        let i = y * cols[z] + x
        lock.lock(); bits[l][z][i / 8] |= 1 << (i % 8); lock.unlock()
    }

    func isSet(_ l: Int, _ z: Int, _ x: Int, _ y: Int) -> Bool {
        guard x >= 0, y >= 0, x < cols[z], y < rows[z] else { return false }
        let i = y * cols[z] + x
        lock.lock(); defer { lock.unlock() }
        return bits[l][z][i / 8] & (1 << (i % 8)) != 0
    }

    /// Layer `l` as the viewer's description: per zoom, columns, rows and the bits.
    func grids(_ l: Int) -> [(cols: Int, rows: Int, present: [UInt8])] {
        lock.lock(); defer { lock.unlock() }
        return bits[l].indices.map { (cols[$0], rows[$0], bits[l][$0]) }
    }
}
