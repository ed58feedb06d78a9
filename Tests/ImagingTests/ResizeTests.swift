import TestSupport
import XCTest
@testable import Imaging
import Tensors

final class ResizeTests: XCTestCase {
    func testHalvingAveragesBlocks() {
        // Half-pixel centres: 4→2 samples at 0.5 and 2.5, i.e. the mean of each pair.
        let src: [Float] = [0, 2, 4, 6,
                            8, 10, 12, 14]
        XCTAssertEqual(Resize.bilinear(src, channels: 1, height: 2, width: 4, toHeight: 1, toWidth: 2), [5, 9])
    }

    func testUpsamplingMatchesHandValues() {
        // 2→4: source coordinates −0.25 (clamped to 0), 0.25, 0.75, 1.25 (clamped to 1).
        let out = Resize.bilinear([0, 8], channels: 1, height: 1, width: 2, toHeight: 1, toWidth: 4)
        XCTAssertEqual(out, [0, 2, 6, 8])
        XCTAssertEqual(Resize.bilinear([1, 2, 3], channels: 1, height: 1, width: 3, toHeight: 1, toWidth: 3), [1, 2, 3])
    }

    func testPreprocessingMatchesPyTorchReference() throws {
        let img = try Codecs.decode(path: Support.repo("datasets/demo/images/slide_000.png"))
        let p = Preprocessing(width: 64, height: 64, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25])
        let x = p.apply(img)
        let expected = try NPY.read(Support.fixture("demo/preprocessed_slide_000.npy"))
        XCTAssertEqual(x.shape, [1, 3, 64, 64])
        XCTAssertLessThan(x.maxAbsDifference(expected), 1e-5)
    }

    func testBGROrderSwapsChannels() {
        let img = Image(width: 1, height: 1, channels: 3, pixels: [255, 0, 51])
        let x = Preprocessing(width: 1, height: 1, channelOrder: .bgr).apply(img)
        XCTAssertEqual(x.data[0], 0.2, accuracy: 1e-6)
        XCTAssertEqual(x.data[1], 0)
        XCTAssertEqual(x.data[2], 1, accuracy: 1e-6)
    }
}
