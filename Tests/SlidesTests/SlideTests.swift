import Foundation
import Imaging
import TestSupport
import XCTest
@testable import Slides

/// Slides through OpenSlide: a synthetic pyramid written with libtiff is read back exactly;
/// tissue pieces, pen marks and tiles come out where they were planted.
final class SlideTests: XCTestCase {
    /// Two tissue pieces (lesions in the first), a pen stroke across the glass between them.
    static let synthetic: SyntheticSlide = {
        let base = SyntheticSlide.layout(width: 2048, height: 1024, pieceCount: 2, lesionsPerPiece: 3, seed: 7)
        return SyntheticSlide(width: base.width, height: base.height, pieces: base.pieces, lesions: base.lesions,
                              pen: (1024, 60, 1024, 960), seed: 7)
    }()

    /// The synthetic slide written once (lossless) for all tests. Every level is a whole number
    /// of tiles: OpenSlide 3.4 reads the edge tiles of a non-JPEG level shifted by the padding
    /// (libtiff's bottom-up RGBA tiles), which JPEG slides, as scanners write them, do not hit.
    static let written: String = try! write(synthetic)

    static func write(_ slide: SyntheticSlide, compression: PyramidWriter.Compression = .deflate) throws -> String {
        let path = Support.temporaryDirectory() + "/synthetic.svs"
        try PyramidWriter(mpp: SyntheticSlide.mpp, tileSize: 128, compression: compression, minimumSide: 512)
            .write(to: path, width: slide.width, height: slide.height) { x, y, w, h, d in
                slide.render(x: x, y: y, width: w, height: h, downsample: d)
            }
        return path
    }

    func testPyramidReadsBackExactly() throws {
        let slide = try Slide(path: Self.written)
        XCTAssertEqual(slide.vendor, "aperio")
        XCTAssertEqual(slide.levels.map(\.width), [2048, 1024, 512])
        XCTAssertEqual(slide.levels.map(\.downsample), [1, 2, 4])
        XCTAssertEqual(slide.objectivePower, 40)
        XCTAssertEqual(slide.mpp?.x ?? 0, 0.25, accuracy: 1e-9)
        // Deflate is lossless: a region equals the renderer's pixels, at level 0 and level 2.
        let region = try slide.read(x: 700, y: 500, level: 0, width: 300, height: 200)
        XCTAssertEqual(region, Self.synthetic.render(x: 700, y: 500, width: 300, height: 200, downsample: 1))
        let coarse = try slide.read(x: 1024, y: 512, level: 2, width: 64, height: 32)
        XCTAssertEqual(coarse, Self.synthetic.render(x: 1024, y: 512, width: 64, height: 32, downsample: 4))
        // Outside the slide is transparent: white.
        let outside = try slide.read(x: 2040, y: 0, level: 0, width: 24, height: 1)
        XCTAssertEqual(Array(outside.pixels.suffix(3)), [255, 255, 255])
        XCTAssertEqual(slide.level(forDownsample: 3), 1)
        XCTAssertEqual(slide.level(forDownsample: 100), 2)
    }

    func testTissuePiecesAndPenAreFound() throws {
        let slide = try Slide(path: Self.written)
        var options = TilingOptions(mpp: 0.5, tile: 64)
        options.tissue.mpp = 4
        options.tissue.minPieceArea = 10_000
        let grid = try TileGrid(slide: slide, options: options)
        // Two pieces, left and right; the pen line between them is not tissue.
        XCTAssertEqual(grid.mask.pieces.count, 2, "\(grid.mask.pieces)")
        let truth = Self.synthetic.pieces
        for (piece, ellipse) in zip(grid.mask.pieces, truth) {
            XCTAssertEqual(Double(piece.x + piece.width / 2), ellipse.cx, accuracy: 64)
            XCTAssertEqual(Double(piece.width), 2 * ellipse.rx, accuracy: 128)
        }
        let penColumn = grid.mask.coverage(x: 1018, y: 100, width: 12, height: 800)
        XCTAssertEqual(penColumn.fraction, 0, accuracy: 0.01)
        // Pen marks: a marker's stroke (30 × 50 view pixels at 4 µm: 0.024 mm² of ink) next to
        // the tissue is counted; the tissue alone has no ink patch that large (H&E's purples and
        // saturated nuclei are not pen marks).
        let base = SyntheticSlide.layout(width: 2048, height: 1024, pieceCount: 2, lesionsPerPiece: 3, seed: 7)
        let view = base.render(x: 0, y: 0, width: 128, height: 64, downsample: 16)
        XCTAssertLessThan(TissueMask.detect(view, downsample: 16, mpp0: 0.25).penFraction, 0.001)
        var inked = view.pixels
        for y in 0..<50 { for x in 60..<90 { inked.replaceSubrange((3 * (y * 128 + x))..<(3 * (y * 128 + x) + 3), with: [40, 70, 200]) } }
        let mark = TissueMask.detect(Image(width: 128, height: 64, channels: 3, pixels: inked), downsample: 16, mpp0: 0.25)
        XCTAssertEqual(mark.penFraction, 1500.0 / (128 * 64), accuracy: 0.002, "\(mark.penFraction)")
        // Tiles: 128 level-0 pixels (64 at 0.5 µm), read from level 1, all on tissue.
        XCTAssertEqual(grid.scale, 2, accuracy: 1e-9)
        XCTAssertFalse(grid.tiles.isEmpty)
        for t in grid.tiles {
            XCTAssertEqual(t.width, 128)
            XCTAssertEqual(t.level, 1)
            XCTAssertEqual(t.levelWidth, 64)
            XCTAssertGreaterThanOrEqual(t.tissue, 0.5)
            XCTAssertTrue(t.piece == 1 || t.piece == 2)
            let e = truth[t.piece - 1]
            XCTAssertTrue(e.contains(Double(t.x + 64), Double(t.y + 64), wobble: 0.2), "tile centre \(t.x + 64),\(t.y + 64) off piece \(t.piece)")
        }
        XCTAssertLessThan(grid.tiles.count, grid.candidates)
        // A tile is the level-1 region: equal to the renderer at downsample 2.
        let t = grid.tiles[grid.tiles.count / 2]
        XCTAssertEqual(try TileGrid.read(t, from: slide), Self.synthetic.render(x: t.x, y: t.y, width: 64, height: 64, downsample: 2))
    }

    /// Focus: on a slide whose left piece is half out of focus (a scanner's focus failure), the
    /// tiles in the blurred band are the ones `Focus.blurred` flags, and no tile elsewhere.
    func testTilesOutOfFocusAreFlagged() throws {
        let base = Self.synthetic
        let band = (x0: 0.0, y0: 0.0, x1: 1024.0, y1: 512.0) // the upper half of the left piece
        let blurred = SyntheticSlide(width: base.width, height: base.height, pieces: base.pieces, lesions: base.lesions,
                                     pen: base.pen, seed: base.seed, blur: band)
        // Outside the band the pixels are the sharp slide's.
        XCTAssertEqual(blurred.render(x: 1100, y: 600, width: 40, height: 30, downsample: 1),
                       base.render(x: 1100, y: 600, width: 40, height: 30, downsample: 1))
        let slide = try Slide(path: try Self.write(blurred))
        var options = TilingOptions(mpp: 0.5, tile: 64)
        options.tissue.mpp = 4
        options.tissue.minPieceArea = 10_000
        let grid = try TileGrid(slide: slide, options: options)
        let sharpness = try grid.tiles.map { Focus.sharpness(try TileGrid.read($0, from: slide)) }
        let flagged = Focus.blurred(sharpness)
        var inside = 0
        for (t, isBlurred) in zip(grid.tiles, flagged) {
            let within = Double(t.x + t.width) <= band.x1 && Double(t.y + t.height) <= band.y1
            let apart = Double(t.x) >= band.x1 || Double(t.y) >= band.y1
            if within { inside += 1; XCTAssertTrue(isBlurred, "tile \(t.x),\(t.y) in the blurred band") }
            if apart { XCTAssertFalse(isBlurred, "tile \(t.x),\(t.y) in focus") }
        }
        XCTAssertGreaterThan(inside, 5)
        // The measure itself: a flat tile has none, a checkerboard the most.
        XCTAssertEqual(Focus.sharpness(Image(width: 8, height: 8, channels: 3, pixels: [UInt8](repeating: 200, count: 192))), 0)
        let checker = (0..<64).flatMap { i -> [UInt8] in let v: UInt8 = (i / 8 + i % 8) % 2 == 0 ? 0 : 255; return [v, v, v] }
        XCTAssertEqual(Focus.sharpness(Image(width: 8, height: 8, channels: 3, pixels: checker)), 1020 * 1020, accuracy: 1)
    }

    func testUnreadableFilesFailWithTheirName() throws {
        let dir = Support.temporaryDirectory()
        try Data("not a slide".utf8).write(to: URL(fileURLWithPath: "\(dir)/text.svs"))
        XCTAssertThrowsError(try Slide(path: "\(dir)/text.svs")) { XCTAssertTrue("\($0)".hasPrefix("\(dir)/text.svs: not a slide OpenSlide can read"), "\($0)") }
        XCTAssertThrowsError(try Slide(path: "\(dir)/missing.svs")) { XCTAssertEqual("\($0)", "\(dir)/missing.svs: cannot read slide") }
        // A truncated pyramid: the header survives, the tiles do not.
        let path = Self.written
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        try data.prefix(data.count / 3).write(to: URL(fileURLWithPath: "\(dir)/truncated.svs"))
        do {
            let slide = try Slide(path: "\(dir)/truncated.svs")
            XCTAssertThrowsError(try slide.read(x: 0, y: 0, level: 0, width: 2048, height: 1024)) {
                XCTAssertTrue("\($0)".contains("truncated.svs"), "\($0)")
            }
        } catch {
            XCTAssertTrue("\(error)".contains("truncated.svs"), "\(error)")
        }
    }
}
