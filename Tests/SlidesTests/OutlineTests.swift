import Foundation
import TestSupport
import XCTest
@testable import Slides

/// Outlines traced along pixel edges, read back through the GeoJSON annotation reader: the
/// polygon holds exactly the labelled pixels' centres (holes included).
final class OutlineTests: XCTestCase {
    func testRingsEncloseExactlyTheRegion() throws {
        // A 6 × 5 block with a one-pixel hole, plus a pixel touching it only at a corner (8-connected).
        let (w, h) = (10, 8)
        var labels = [Int32](repeating: 0, count: w * h)
        for y in 1...5 { for x in 1...6 { labels[y * w + x] = 1 } }
        labels[3 * w + 3] = 0
        labels[6 * w + 7] = 1
        let rings = Outline.rings(labels, width: w, height: h, label: 1)
        XCTAssertEqual(rings.count, 2, "outer boundary and one hole")
        for ring in rings { XCTAssertEqual(ring.first!.x, ring.last!.x); XCTAssertEqual(ring.first!.y, ring.last!.y) }
        // Straight runs are single segments: the block's outline has far fewer points than edges.
        XCTAssertLessThan(rings[0].count, 16)
        let polygon = rings.map { ring in "[" + ring.map { "[\($0.x), \($0.y)]" }.joined(separator: ", ") + "]" }.joined(separator: ", ")
        let path = Support.temporaryDirectory() + "/outline.geojson"
        try #"{"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [\#(polygon)]}, "properties": {}}"#
            .write(toFile: path, atomically: true, encoding: .utf8)
        let annotations = try Annotations(path: path)
        for y in 0..<h {
            for x in 0..<w {
                XCTAssertEqual(annotations.contains(Double(x) + 0.5, Double(y) + 0.5), labels[y * w + x] == 1, "pixel \(x),\(y)")
            }
        }
    }
}
