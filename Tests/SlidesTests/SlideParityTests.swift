import Foundation
import Imaging
import Tensors
import TestSupport
import XCTest
@testable import Slides

/// Candela's slide reads against openslide-python's `read_region` composited over white
/// (fixtures by tools/make_slide_fixtures.py, from the slide `candela make-slide` writes with
/// the parameters below): byte for byte at level 0, for a level-1 tile as the tiler reads it, for
/// a partial edge tile of a JPEG level, and past the slide's edge (glass is white).
final class SlideParityTests: XCTestCase {
    struct Region: Decodable { let name: String; let x: Int; let y: Int; let level: Int; let width: Int; let height: Int }
    struct Info: Decodable { let regions: [Region]; let dimensions: [Int] }

    func testReadsEqualOpenSlidePython() throws {
        let dir = Support.fixture("slides")
        let info = try JSONDecoder().decode(Info.self, from: Data(contentsOf: URL(fileURLWithPath: "\(dir)/regions.json")))
        // `candela make-slide --width 1536 --height 768 --pieces 1 --lesions 3 --seed 5`.
        let synthetic = SyntheticSlide.layout(width: 1536, height: 768, pieceCount: 1, lesionsPerPiece: 3, seed: 5)
        let path = Support.temporaryDirectory() + "/parity.svs"
        try PyramidWriter(mpp: SyntheticSlide.mpp, tileSize: 256, compression: .jpeg(quality: 85))
            .write(to: path, width: synthetic.width, height: synthetic.height) { x, y, w, h, d in
                synthetic.render(x: x, y: y, width: w, height: h, downsample: d)
            }
        let slide = try Slide(path: path)
        XCTAssertEqual([slide.width, slide.height], info.dimensions)
        for r in info.regions {
            let expected = try NPY.read("\(dir)/\(r.name).npy")
            XCTAssertEqual(expected.shape, [r.height, r.width, 3], r.name)
            let image = try slide.read(x: r.x, y: r.y, level: r.level, width: r.width, height: r.height)
            let differing = zip(image.pixels, expected.data).filter { Float($0) != $1 }.count
            XCTAssertEqual(differing, 0, "\(r.name): \(differing) of \(image.pixels.count) bytes differ from openslide-python")
        }
        // The tiler's read of a tile at 0.5 µm per pixel is that level-1 region.
        let tile = SlideTile(x: 640, y: 256, width: 128, height: 128, level: 1, levelWidth: 64, levelHeight: 64, size: 64,
                             tissue: 1, piece: 1)
        let expected = try NPY.read("\(dir)/level1_tile.npy")
        XCTAssertEqual(try TileGrid.read(tile, from: slide).pixels.map(Float.init), expected.data)
    }
}
