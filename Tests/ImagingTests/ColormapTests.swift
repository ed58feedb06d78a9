import TestSupport
import XCTest
@testable import Imaging

final class ColormapTests: XCTestCase {
    func testEndpointsAndMonotoneLightness() {
        XCTAssertTrue(Colormap.viridis.color(0) == (68, 1, 84))
        XCTAssertTrue(Colormap.viridis.color(1) == (253, 231, 37))
        XCTAssertTrue(Colormap.jet.color(0) == (0, 0, 128))
        XCTAssertTrue(Colormap.jet.color(1) == (128, 0, 0))
        XCTAssertTrue(Colormap.jet.color(0.5) == (126, 255, 129) || Colormap.jet.color(0.5).1 == 255)
        // Viridis gets lighter along the map (the property that makes it readable in gray).
        let luma = Colormap.viridis.table.map { 0.299 * Double($0.0) + 0.587 * Double($0.1) + 0.114 * Double($0.2) }
        XCTAssertTrue(zip(luma, luma.dropFirst()).allSatisfy { $0 <= $1 + 0.5 })
        // Turbo: blue in the low range, dark red at the top.
        let t0 = Colormap.turbo.color(0.1), t1 = Colormap.turbo.color(1)
        XCTAssertTrue(t0.2 > t0.0 && t1.0 > t1.2)
        XCTAssertEqual(Colormap.viridis.table.count, 256)
    }

    func testOverlayBlendsHalfAndHalf() {
        let img = Image(width: 2, height: 1, channels: 3, pixels: [200, 100, 0, 0, 0, 0])
        let out = Overlay.blend(image: img, heatmap: [0, 1], width: 2, height: 1, colormap: .viridis, alpha: 0.5)
        XCTAssertEqual(Array(out.pixels[0..<3]), [134, 51, 42]) // (200+68)/2, (100+1)/2 rounded, (0+84)/2
        XCTAssertEqual(Array(out.pixels[3..<6]), [127, 116, 19]) // (0+253)/2 ... rounded
    }
}
