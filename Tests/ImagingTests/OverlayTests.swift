import Foundation
import XCTest
@testable import Imaging

/// The relevance overlay in numbers: where the map is zero the image is untouched, an outlier
/// no longer washes the rest out, and the strongest evidence is drawn at full colour.
final class OverlayTests: XCTestCase {
    /// A 64 × 64 gray image; a map that is zero except a 10 × 10 blob at 0.1 and one outlier at 1.
    func scene() -> (Image, [Float]) {
        let image = Image(width: 64, height: 64, channels: 3, pixels: [UInt8](repeating: 128, count: 64 * 64 * 3))
        var map = [Float](repeating: 0, count: 64 * 64)
        for y in 20..<30 { for x in 20..<30 { map[y * 64 + x] = 0.1 } }
        map[5 * 64 + 60] = 1
        return (image, map)
    }

    /// Largest channel difference of each pixel from the image.
    func change(_ a: Image, _ b: Image) -> [Int] {
        (0..<(a.width * a.height)).map { i in (0..<3).map { abs(Int(a.pixels[3 * i + $0]) - Int(b.pixels[3 * i + $0])) }.max()! }
    }

    func testIrrelevantPixelsAreUntouchedAndOutliersAreClipped() {
        let (image, map) = scene()
        let (overlay, scale) = Overlay.relevance(image: image, heatmap: map, width: 64, height: 64)
        // 100 blob pixels and one outlier of 4,096: the 99.5th percentile is the blob's 0.1.
        XCTAssertEqual(scale.clip, 0.1, accuracy: 1e-7)
        let d = change(image, overlay)
        let zero = map.indices.filter { map[$0] == 0 }
        XCTAssertEqual(zero.filter { d[$0] == 0 }.count, zero.count, "every zero pixel shows the image as it is")
        // The blob's inner pixels (bilinear resize at equal size leaves them exact) at full colour:
        // 85% of the colormap's top over the gray.
        let top = Colormap.viridis.color(1)
        let inner = 25 * 64 + 25
        for (k, c) in [top.0, top.1, top.2].enumerated() {
            XCTAssertEqual(Double(overlay.pixels[3 * inner + k]), 0.15 * 128 + 0.85 * Double(c), accuracy: 1)
        }
        // The old blend: every pixel changes (half the colormap everywhere), and the blob, at 10 %
        // of the outlier, is drawn in the colormap's dark end.
        let old = Overlay.blend(image: image, heatmap: map, width: 64, height: 64)
        XCTAssertEqual(change(image, old).filter { $0 == 0 }.count, 0)
        let oldBlob = old.pixels[3 * inner + 1], newBlob = overlay.pixels[3 * inner + 1]
        XCTAssertGreaterThan(Int(newBlob) - Int(oldBlob), 60, "the blob stands out: green channel \(oldBlob) → \(newBlob)")
    }

    func testAllZeroMapLeavesTheImage() {
        let (image, _) = scene()
        let (overlay, scale) = Overlay.relevance(image: image, heatmap: [Float](repeating: 0, count: 64 * 64), width: 64, height: 64)
        XCTAssertEqual(overlay, image)
        XCTAssertEqual(scale.clip, 1)
    }

    /// The signed overlay: red where the map is for the class, blue where against, the image
    /// untouched at 0, clipped at the 99.5th percentile of |v|.
    func testSignedOverlayIsRedForBlueAgainstAndClear() {
        XCTAssertTrue(Overlay.bwr(1) == (255, 0, 0))
        XCTAssertTrue(Overlay.bwr(-1) == (0, 0, 255))
        XCTAssertTrue(Overlay.bwr(0) == (255, 255, 255))
        XCTAssertTrue(Overlay.bwr(-0.5) == (128, 128, 255))
        let (image, _) = scene()
        var map = [Float](repeating: 0, count: 64 * 64)
        for y in 20..<30 { for x in 20..<30 { map[y * 64 + x] = 0.2 } }   // for the class
        for y in 40..<50 { for x in 40..<50 { map[y * 64 + x] = -0.2 } }  // against
        map[5 * 64 + 60] = -3                                             // one outlier
        let (overlay, scale) = Overlay.signedRelevance(image: image, map: map, width: 64, height: 64)
        XCTAssertEqual(scale.clip, 0.2, accuracy: 1e-7, "200 pixels at |0.2| and one at 3: the 99.5th percentile of |v| is 0.2")
        let d = change(image, overlay)
        let zero = map.indices.filter { map[$0] == 0 }
        XCTAssertEqual(zero.filter { d[$0] == 0 }.count, zero.count, "every zero pixel shows the image as it is")
        // Full colour inside the blobs: 85 % red over the gray for, 85 % blue against.
        let red = 25 * 64 + 25, blue = 45 * 64 + 45
        XCTAssertEqual(Double(overlay.pixels[3 * red]), 0.15 * 128 + 0.85 * 255, accuracy: 1)
        XCTAssertEqual(Double(overlay.pixels[3 * red + 2]), 0.15 * 128, accuracy: 1)
        XCTAssertEqual(Double(overlay.pixels[3 * blue]), 0.15 * 128, accuracy: 1)
        XCTAssertEqual(Double(overlay.pixels[3 * blue + 2]), 0.15 * 128 + 0.85 * 255, accuracy: 1)
        // The heatmap alone: the same colours on white.
        let alone = Overlay.colorizeSigned(map, width: 64, height: 64, clip: scale.clip)
        XCTAssertEqual(Array(alone.pixels[(3 * red)..<(3 * red + 3)]), [255, 0, 0])
        XCTAssertEqual(Array(alone.pixels[0..<3]), [255, 255, 255])
    }
}
