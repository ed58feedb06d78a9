import Foundation
import Imaging
import TestSupport
import XCTest
@testable import Report
import Store

/// The viewer's heatmap pyramid: finest tiles carry the tiles' raw values on the layer's scale
/// (overlaps averaged), empty tiles are not written, coarser zooms average their children.
final class HeatmapPyramidTests: XCTestCase {
    func testFinestTilesAndCoarserAverages() throws {
        let dir = Support.temporaryDirectory()
        // A 1024 x 512 slide, finest = 2 level-0 pixels a viewer pixel: zoom 1 is 2 x 1 tiles of
        // 512 level-0 pixels, zoom 0 one tile. Two 128-pixel tiles with 2 x 2 heatmaps: tile A at
        // (0, 0) raw 0 | 10 (left | right columns), tile B at (66, 0) overlapping A's right half, raw 10.
        func item(_ id: Int64, _ x: Int) -> ItemRecord {
            ItemRecord(id: id, runID: 1, dataset: "d", path: "s#\(x),0", label: nil, maskPath: nil, contentHash: "h\(id)", width: 64, height: 64,
                       tile: TileRecord(slidePath: "s", x: x, y: 0, width: 128, height: 128, level: 0, tissue: 1, piece: 1))
        }
        func map(_ id: Int64, _ values: [Float], low: Double, high: Double) -> AttributionRecord {
            AttributionRecord(itemID: id, modelHash: "m", explainer: "cam", method: "gradcam", parameters: "{}", target: 1, cacheKey: "k\(id)",
                              rawShape: [2, 2], height: 2, width: 2, heatmap: values, seconds: 0, low: low, high: high)
        }
        let maps: [Int64: [AttributionRecord]] = [1: [map(1, [0, 1, 0, 1], low: 0, high: 10)], 2: [map(2, [1, 1, 1, 1], low: 0, high: 10)]]
        let layer = HeatmapPyramidWriter.Layer(modelHash: "m", explainer: "cam", tag: "cam-tiles", low: 0, span: 10)
        let pyramids = try HeatmapPyramidWriter(directory: dir, colormap: .viridis)
            .write(zooms: ZoomGrid(width: 1024, height: 512, finest: 2), tiles: [item(1, 0), item(2, 66)], layers: [layer],
                   attributions: { maps[$0] ?? [] })
        XCTAssertEqual(pyramids.count, 1)
        let p = pyramids[0]
        XCTAssertEqual(p.files.sorted(), ["slides/cam-tiles/0/0_0.png", "slides/cam-tiles/1/0_0.png"])
        XCTAssertEqual(p.grids.map { [$0.cols, $0.rows] }, [[1, 1], [2, 1]])
        XCTAssertEqual(p.grids[1].present, [0b01])
        let finest = try Codecs.decode(path: "\(dir)/slides/cam-tiles/1/0_0.png", as: .rgba)
        func pixel(_ img: Image, _ x: Int, _ y: Int) -> [UInt8] { Array(img.pixels[(y * img.width + x) * 4..<(y * img.width + x) * 4 + 4]) }
        let (r, g, b) = Colormap.viridis.table[255]
        // Viewer pixel (10, 10) = level-0 (21, 21): tile A's left column, raw 0: transparent.
        XCTAssertEqual(pixel(finest, 10, 10)[3], 0)
        // (40, 10) = level-0 (81, 21): A's right column (10) and B (10): full scale, opacity 0.8.
        XCTAssertEqual(pixel(finest, 40, 10), [r, g, b, 204])
        // (80, 10) = level-0 (161, 21): B alone, 10; (96, 10) = level-0 193, B's last column.
        XCTAssertEqual(pixel(finest, 80, 10), [r, g, b, 204])
        XCTAssertEqual(pixel(finest, 96, 10)[3], 204)
        // Beyond the tiles: nothing.
        XCTAssertEqual(pixel(finest, 97, 10)[3], 0)
        XCTAssertEqual(pixel(finest, 10, 100)[3], 0)
        // Zoom 0 averages 2 x 2 pixels of zoom 1: (20, 5) all full; (48, 5) takes zoom-1 columns
        // 96 (B) and 97 (nothing): half the opacity, B's colour.
        let coarse = try Codecs.decode(path: "\(dir)/slides/cam-tiles/0/0_0.png", as: .rgba)
        XCTAssertEqual(pixel(coarse, 20, 5), [r, g, b, 204])
        XCTAssertEqual(pixel(coarse, 48, 5), [r, g, b, 102])
        XCTAssertEqual(pixel(coarse, 5, 5)[3], 0)
    }

    func testPNGDecodesAsRGBA() throws {
        let image = Image(width: 2, height: 1, channels: 4, pixels: [10, 20, 30, 0, 200, 100, 50, 128])
        XCTAssertEqual(try Codecs.decode(try Codecs.encodePNG(image), as: .rgba), image)
        // An opaque JPEG gets alpha 255.
        let jpeg = try Codecs.decode(try Codecs.encodeJPEG(Image(width: 8, height: 8, channels: 3, pixels: [UInt8](repeating: 90, count: 192)),
                                                           quality: 95), as: .rgba)
        XCTAssertEqual(jpeg.channels, 4)
        XCTAssertEqual(Set(stride(from: 3, to: jpeg.pixels.count, by: 4).map { jpeg.pixels[$0] }), [255])
    }
}
