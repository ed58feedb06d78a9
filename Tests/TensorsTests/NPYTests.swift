import Foundation
import TestSupport
import XCTest
@testable import Tensors

final class NPYTests: XCTestCase {
    func testRoundTrip() throws {
        var rng = SeededRandom(seed: 7)
        for shape in [[], [5], [2, 3], [1, 3, 4, 4]] {
            let t = rng.tensor(shape)
            let back = try NPY.decode(NPY.encode(t))
            XCTAssertEqual(back, t)
            XCTAssertEqual(NPY.encode(t).count % 64, (t.count * 4) % 64, "header pads data to 64 bytes")
        }
    }

    func testRejectsBadFiles() throws {
        XCTAssertThrowsError(try NPY.decode(Data("nope".utf8)))
        var truncated = NPY.encode(Tensor(shape: [10], repeating: 1))
        truncated.removeLast(8)
        XCTAssertThrowsError(try NPY.decode(truncated)) { XCTAssertTrue("\($0)".contains("truncated")) }
        let path = Support.temporaryDirectory() + "/missing.npy"
        XCTAssertThrowsError(try NPY.read(path)) { XCTAssertTrue("\($0)".contains(path)) }
    }

    func testReadsFloat64AndInt64() throws {
        // Hand-built headers for '<f8' and '<i8' arrays of [1.5, -2] and [3, 4].
        func file(_ descr: String, _ payload: [UInt8]) -> Data {
            var h = "{'descr': '\(descr)', 'fortran_order': False, 'shape': (2,), }"
            h += String(repeating: " ", count: (64 - (10 + h.utf8.count + 1) % 64) % 64) + "\n"
            return Data([0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(h.utf8.count), 0] + Array(h.utf8) + payload)
        }
        let f8: [UInt8] = [1.5, -2.0].flatMap { (v: Double) -> [UInt8] in withUnsafeBytes(of: v) { Array($0) } }
        XCTAssertEqual(try NPY.decode(file("<f8", f8)).data, [1.5, -2])
        let i8: [UInt8] = [Int64(3), 4].flatMap { (v: Int64) -> [UInt8] in withUnsafeBytes(of: v) { Array($0) } }
        XCTAssertEqual(try NPY.decode(file("<i8", i8)).data, [3, 4])
        XCTAssertThrowsError(try NPY.decode(file(">f4", Array(repeating: 0, count: 8))))
    }
}
