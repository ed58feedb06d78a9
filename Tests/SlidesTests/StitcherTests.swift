import XCTest
@testable import Slides

/// Stitching: raw values restored from each tile's range, overlaps averaged, no holes when the
/// map is finer than the tiles' pixels, NaN where no tile lies.
final class StitcherTests: XCTestCase {
    func testScalesOverlapsAndFineMaps() {
        // Two 2 × 2 tile maps of 8 × 8 level-0 pixels, overlapping by 4, on a map of 2 level-0 pixels a pixel.
        var s = Stitcher(slideWidth: 16, slideHeight: 8, downsample: 2)
        s.add([0, 1, 0, 1], mapWidth: 2, mapHeight: 2, x: 0, y: 0, w: 8, h: 8, low: 10, high: 20)  // raw 10 | 20
        s.add([1, 1, 1, 1], mapWidth: 2, mapHeight: 2, x: 4, y: 0, w: 8, h: 8, low: 0, high: 4)    // raw 4 everywhere
        let r = s.result()
        XCTAssertEqual([s.width, s.height], [8, 4])
        // Map row 0: x 0-3 from tile 1's left half (10); x 4-7 tile 1's right half (20) and tile 2 (4) averaged;
        // x 8-11 tile 2 only (4); x 12-15 nothing.
        let row = Array(r.values[0..<8])
        XCTAssertEqual(Array(row[0..<2]), [10, 10])
        XCTAssertEqual(Array(row[2..<4]), [12, 12])
        XCTAssertEqual(Array(row[4..<6]), [4, 4])
        XCTAssertTrue(row[6].isNaN && row[7].isNaN)
        XCTAssertFalse(r.values.prefix(6).contains { $0.isNaN }, "a map finer than the tile pixels has no holes")
        XCTAssertEqual(r.low, 4)
        XCTAssertEqual(r.high, 12)
    }
}
