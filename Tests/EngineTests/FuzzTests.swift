import Foundation
import TestSupport
import XCTest
@testable import Engine
import Tensors

/// Seeded mutation fuzzing of the ONNX loader and the `.npy` reader (docs/limits.md): every
/// mutated file either loads or throws; a crash, a trap or a hang fails the test run. A model
/// that loads also runs one forward pass, which must succeed or throw.
final class FuzzTests: XCTestCase {
    func testMutatedModelsLoadOrThrow() throws {
        let seeds = [Support.repo("models/demo.onnx"), Support.fixture("static/mixes_batch.onnx"),
                     Support.fixture("cli/input_with_slash.onnx")]
        let dir = Support.temporaryDirectory()
        var mutator = Mutator(seed: 2026)
        var loaded = 0, refused = 0
        for (s, seed) in seeds.enumerated() {
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: seed)))
            for i in 0..<(s == 0 ? 600 : 300) {
                let path = "\(dir)/case-\(s)-\(i).onnx"
                try Data(mutator.mutate(bytes)).write(to: URL(fileURLWithPath: path))
                do {
                    let model = try Model(path: path)
                    loaded += 1
                    guard let input = model.graph.inputs.first else { continue }
                    let shape = input.shape.map { $0 ?? 1 }
                    guard shape.allSatisfy({ $0 >= 0 }), let n = shape.checkedElementCount, n <= 1 << 20 else { continue }
                    _ = try? model.run([input.name: Tensor(shape: shape)], keepAll: false)
                } catch {
                    refused += 1
                    XCTAssertFalse("\(error)".isEmpty)
                }
            }
        }
        print("fuzz: \(loaded) mutated models loaded, \(refused) refused with an error")
        XCTAssertGreaterThan(refused, 0)
    }

    func testMutatedNPYFilesReadOrThrow() throws {
        let seed = [UInt8](NPY.encode(Tensor(shape: [1, 3, 4, 5], data: (0..<60).map(Float.init))))
        var mutator = Mutator(seed: 7)
        var read = 0, refused = 0
        for _ in 0..<2000 {
            do {
                let t = try NPY.decode(Data(mutator.mutate(seed)))
                XCTAssertEqual(t.count, t.shape.elementCount)
                read += 1
            } catch {
                refused += 1
            }
        }
        print("fuzz: \(read) mutated .npy files read, \(refused) refused")
        XCTAssertGreaterThan(refused, 0)
    }
}
