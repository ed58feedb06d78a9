import Foundation
import TestSupport
import XCTest
@testable import Slides

/// OpenSlide's own test slides (Tests/Fixtures/openslide, from openslide-python's fixtures):
/// each opens or fails with one error naming the file and OpenSlide's message.
final class SlideFixtureTests: XCTestCase {
    let dir = Support.fixture("openslide")

    func testReadableSlidesOpen() throws {
        for name in ["small.svs", "😐.svs"] {
            let slide = try Slide(path: "\(dir)/\(name)")
            XCTAssertEqual(slide.vendor, "aperio", name)
            XCTAssertEqual([slide.width, slide.height], [16, 16], name)
            let region = try slide.read(x: 0, y: 0, level: 0, width: 16, height: 16)
            XCTAssertEqual(region.pixels.count, 16 * 16 * 3)
        }
        let boxes = try Slide(path: "\(dir)/boxes.tiff")
        XCTAssertEqual(boxes.vendor, "generic-tiff")
        XCTAssertEqual(boxes.levels.map(\.width), [300, 150, 75, 37])
        XCTAssertNil(boxes.mpp, "a generic TIFF states no resolution to OpenSlide 3.4")
        _ = try boxes.read(x: 100, y: 100, level: 1, width: 32, height: 32)
    }

    func testDamagedAndUnsupportedFilesFailNamingThem() throws {
        // Opens (its header is sound), but its tiles cannot be decoded.
        let unreadable = try Slide(path: "\(dir)/unreadable.svs")
        XCTAssertThrowsError(try unreadable.read(x: 0, y: 0, level: 0, width: 16, height: 16)) { error in
            XCTAssertTrue("\(error)".hasPrefix("\(dir)/unreadable.svs: OpenSlide cannot read the region"), "\(error)")
        }
        XCTAssertThrowsError(try Slide(path: "\(dir)/unopenable.tiff")) { error in
            XCTAssertEqual("\(error)", "\(dir)/unopenable.tiff: OpenSlide cannot open the slide: Unsupported TIFF compression: 52479")
        }
        XCTAssertThrowsError(try Slide(path: "\(dir)/boxes_0.dcm")) { error in
            XCTAssertTrue("\(error)".hasPrefix("\(dir)/boxes_0.dcm: not a slide OpenSlide can read"), "\(error)")
        }
        // The tiler on a slide without a resolution asks for tiling by level instead.
        XCTAssertThrowsError(try TileGrid(slide: try Slide(path: "\(dir)/boxes.tiff"), options: TilingOptions(mpp: 0.5, tile: 32))) { error in
            XCTAssertTrue("\(error)".contains("boxes.tiff: the slide does not state its resolution"), "\(error)")
        }
    }
}
