import Foundation
import Tensors
import TestSupport
import XCTest
@testable import Imaging

/// PNG (8/16-bit; gray, RGB, RGBA, palette) and JPEG (baseline, progressive, gray) decoding of
/// the files tools/make_image_fixtures.py writes: an 8×6 pattern R = 30x, G = 40y, B = 100.
final class CodecTests: XCTestCase {
    func pixel(_ img: Image, _ x: Int, _ y: Int) -> [UInt8] {
        Array(img.pixels[((y * img.width + x) * img.channels)..<((y * img.width + x + 1) * img.channels)])
    }

    func testLosslessPNGVariants() throws {
        for name in ["rgb8.png", "rgb16.png"] {
            let img = try Codecs.decode(path: Support.fixture("images/\(name)"))
            XCTAssertEqual([img.width, img.height, img.channels], [8, 6, 3], name)
            for y in 0..<6 { for x in 0..<8 { XCTAssertEqual(pixel(img, x, y), [UInt8(30 * x), UInt8(40 * y), 100], name) } }
        }
        for name in ["gray8.png", "gray16.png"] {
            let img = try Codecs.decode(path: Support.fixture("images/\(name)"), as: .gray)
            for y in 0..<6 { for x in 0..<8 { XCTAssertEqual(pixel(img, x, y), [UInt8(40 * y)], name) } }
            // Gray decoded as RGB replicates the channel.
            XCTAssertEqual(pixel(try Codecs.decode(path: Support.fixture("images/\(name)")), 3, 2), [80, 80, 80])
        }
    }

    func testRGBAIsCompositedOnWhite() throws {
        let img = try Codecs.decode(path: Support.fixture("images/rgba8.png"))
        XCTAssertEqual(pixel(img, 0, 0), [255, 255, 255]) // fully transparent
        XCTAssertEqual(pixel(img, 2, 1), [60, 40, 100])
    }

    func testPalettePNG() throws {
        let img = try Codecs.decode(path: Support.fixture("images/palette8.png"))
        let palette: [[UInt8]] = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [200, 100, 50]]
        for y in 0..<6 { for x in 0..<8 { XCTAssertEqual(pixel(img, x, y), palette[(x + y) % 4]) } }
    }

    func testJPEGVariants() throws {
        for name in ["baseline.jpg", "progressive.jpg"] {
            let img = try Codecs.decode(path: Support.fixture("images/\(name)"))
            XCTAssertEqual([img.width, img.height, img.channels], [64, 48, 3], name)
            // Centre of each 8×8 block: the pattern value, within JPEG's loss at quality 95.
            for by in 0..<6 { for bx in 0..<8 {
                let p = pixel(img, bx * 8 + 4, by * 8 + 4)
                for (got, want) in zip(p, [30 * bx, 40 * by, 100]) { XCTAssertEqual(Double(got), Double(want), accuracy: 8, name) }
            } }
        }
        let gray = try Codecs.decode(path: Support.fixture("images/gray.jpg"), as: .gray)
        XCTAssertEqual(gray.channels, 1)
        XCTAssertEqual(Double(pixel(gray, 3 * 8 + 4, 2 * 8 + 4)[0]), 0.299 * 90 + 0.587 * 80 + 0.114 * 100, accuracy: 8)
    }

    /// Corrupt and truncated files are Swift errors naming the file, never a process exit.
    func testBadFilesAreErrors() {
        for (name, words) in [("truncated.jpg", "JPEG"), ("corrupt.jpg", "JPEG"), ("truncated.png", "PNG"),
                              ("corrupt.png", "PNG"), ("not-an-image.png", "not a PNG, JPEG or TIFF"),
                              ("tiff/truncated.tif", "TIFF")] {
            let path = Support.fixture("images/\(name)")
            XCTAssertThrowsError(try Codecs.decode(path: path), name) {
                XCTAssertTrue("\($0)".contains(path), "\($0)")
                XCTAssertTrue("\($0)".contains(words), "\($0)")
            }
        }
        XCTAssertThrowsError(try Codecs.decode(Data()))
        XCTAssertThrowsError(try Codecs.decode(path: "/no/such/file.png")) { XCTAssertTrue("\($0)".contains("/no/such/file.png")) }
    }

    /// TIFF tiles through libtiff (tools/make_tiff_fixtures.py: Pillow's pixels in every layout
    /// a tile dataset meets) equal the PNG of the same pixels.
    func testTIFFVariantsMatchTheirPNG() throws {
        let dir = Support.fixture("images/tiff")
        let rgb = try Codecs.decode(path: "\(dir)/rgb.png")
        for name in ["none", "lzw", "deflate", "packbits", "bigtiff", "bigendian", "tiled"] {
            XCTAssertEqual(try Codecs.decode(path: "\(dir)/rgb-\(name).tif"), rgb, name)
        }
        XCTAssertEqual(try Codecs.decode(path: "\(dir)/gray.tif", as: .gray), try Codecs.decode(path: "\(dir)/gray.png", as: .gray))
        XCTAssertEqual(try Codecs.decode(path: "\(dir)/palette.tif"), try Codecs.decode(path: "\(dir)/palette.png"))
        // Unassociated alpha: composited onto white like a PNG's.
        XCTAssertEqual(try Codecs.decode(path: "\(dir)/rgba.tif"), try Codecs.decode(path: "\(dir)/rgba.png"))
    }

    /// A TIFF whose first image is over the pixel limit is refused from its header (a 126-byte
    /// file declaring 100000 × 100000 pixels).
    func testTIFFBombIsRefusedFromItsHeader() throws {
        let path = Support.fixture("images/tiff/bomb.tif")
        XCTAssertLessThan(try Data(contentsOf: URL(fileURLWithPath: path)).count, 200)
        XCTAssertThrowsError(try Codecs.decode(path: path)) {
            XCTAssertTrue("\($0)".contains("bomb.tif: TIFF of 100000 x 100000 pixels (37.3 GiB decoded) is over the limit"), "\($0)")
        }
    }

    func testPNGRoundTrip() throws {
        var rng = SeededRandom(seed: 21)
        for channels in [1, 3] {
            let img = Image(width: 13, height: 7, channels: channels,
                            pixels: (0..<(13 * 7 * channels)).map { _ in UInt8(rng.int(0...255)) })
            XCTAssertEqual(try Codecs.decode(try Codecs.encodePNG(img), as: channels == 3 ? .rgb : .gray), img)
        }
    }

    func testJPEGEncodeDecodeBaselineAndProgressive() throws {
        let img = try Codecs.decode(path: Support.fixture("images/baseline.jpg"))
        for progressive in [false, true] {
            let data = try Codecs.encodeJPEG(img, quality: 98, progressive: progressive)
            let back = try Codecs.decode(data)
            let err = zip(back.pixels, img.pixels).map { abs(Int($0) - Int($1)) }.max() ?? 0
            XCTAssertLessThan(err, 24, "progressive \(progressive)")
        }
    }
}
