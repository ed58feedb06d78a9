import Foundation
import XCTest
@testable import Slides

/// The slide pointing game: precision at k (k = annotated regions) over tiles ranked by their
/// heatmap's raw maximum, and the touch test against annotation polygons.
final class SlidePointingTests: XCTestCase {
    func testPrecisionAtTheNumberOfRegions() {
        let tiles = [SlidePointing.Tile(peak: 0.9, onLesion: true), SlidePointing.Tile(peak: 0.8, onLesion: false),
                     SlidePointing.Tile(peak: 0.7, onLesion: true), SlidePointing.Tile(peak: 0.1, onLesion: true)]
        // Two regions: the two highest peaks, one on a lesion.
        XCTAssertEqual(SlidePointing.score(tiles, regions: 2)?.value, 0.5)
        XCTAssertEqual(SlidePointing.score(tiles, regions: 2)?.k, 2)
        XCTAssertEqual(SlidePointing.score(tiles, regions: 1)?.value, 1)
        XCTAssertEqual(SlidePointing.score(tiles, regions: 3)?.value ?? 0, 2.0 / 3, accuracy: 1e-12)
        // More regions than tiles: k is the tile count.
        XCTAssertEqual(SlidePointing.score(tiles, regions: 10)?.k, 4)
        XCTAssertEqual(SlidePointing.score(tiles, regions: 10)?.value, 0.75)
        // The order of the input does not matter but for ties (kept in input order).
        XCTAssertEqual(SlidePointing.score(tiles.reversed(), regions: 2)?.value, 0.5)
        let tied = [SlidePointing.Tile(peak: 1, onLesion: false), SlidePointing.Tile(peak: 1, onLesion: true)]
        XCTAssertEqual(SlidePointing.score(tied, regions: 1)?.value, 0)
        XCTAssertNil(SlidePointing.score(tiles, regions: 0))
        XCTAssertNil(SlidePointing.score([], regions: 3))
    }

    func testTouchesAPolygonInsideTheTile() throws {
        // A 10 × 10 square at (100, 100) and a triangle with a hole-free outline.
        let path = NSTemporaryDirectory() + "/pointing-\(UUID().uuidString).geojson"
        try """
        {"type": "FeatureCollection", "features": [
         {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[100, 100], [110, 100], [110, 110], [100, 110], [100, 100]]]},
          "properties": {"classification": {"name": "Tumor"}}}]}
        """.write(toFile: path, atomically: true, encoding: .utf8)
        let a = try Annotations(path: path)
        XCTAssertTrue(SlidePointing.touches(a, x: 64, y: 64, w: 64, h: 64))     // the square lies inside the tile
        XCTAssertTrue(SlidePointing.touches(a, x: 105, y: 105, w: 128, h: 128)) // a corner of the tile on it
        XCTAssertFalse(SlidePointing.touches(a, x: 0, y: 0, w: 64, h: 64))      // apart
        XCTAssertFalse(SlidePointing.touches(a, x: 112, y: 0, w: 64, h: 200))   // beside it
    }
}
